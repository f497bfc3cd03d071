"""rnnsearch: fast CPU decoding for attention-based RNN encoder-decoder models."""
from .errors import EngineError, ModelError

__version__ = "0.1.0"
__all__ = ["Translator", "TranslationResult", "ScoringResult", "ModelError", "EngineError",
           "plot_attention", "__version__"]


def __getattr__(name):
    # The translator pulls in the compiled engine; import it only when asked for, so that
    # tools that only read or write model directories work without a build.
    if name in ("Translator", "TranslationResult", "ScoringResult"):
        from . import translator
        return getattr(translator, name)
    if name == "plot_attention":  # matplotlib is imported only when a picture is drawn
        from .plot import plot_attention
        return plot_attention
    raise AttributeError(name)
