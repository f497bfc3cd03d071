"""rnnsearch: fast CPU decoding for attention-based RNN encoder-decoder models."""
from .errors import EngineError, ModelError

__version__ = "0.1.0"
__all__ = ["Translator", "TranslationResult", "ModelError", "EngineError", "__version__"]


def __getattr__(name):
    # The translator pulls in the compiled engine; import it only when asked for, so that
    # tools that only read or write model directories work without a build.
    if name in ("Translator", "TranslationResult"):
        from . import translator
        return getattr(translator, name)
    raise AttributeError(name)
