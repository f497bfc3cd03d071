"""Keras `Tokenizer` objects saved with pickle (`pickle.dump(tokenizer, f)`, a common way
Keras seq2seq models ship their vocabularies), read without Keras and without running
pickled code: a restricted unpickler loads plain containers for real, turns the Tokenizer
class (from any of the modules Keras versions keep it in) into an inert stand-in that keeps
its attributes, and refuses everything else."""
from __future__ import annotations

import io
import pickle

from ...errors import ModelError
from ..common.checkpoint import StandIn

# where Keras versions define Tokenizer: Keras 2 / tf.keras / keras-preprocessing / Keras 3
_TOKENIZER_MODULES = ("keras.preprocessing.text", "keras_preprocessing.text",
                      "keras.src.preprocessing.text", "keras.src.legacy.preprocessing.text",
                      "tensorflow.python.keras.preprocessing.text",
                      "tensorflow.keras.preprocessing.text", "tf_keras.preprocessing.text",
                      "tf_keras.src.preprocessing.text")
_ALLOWED = {("collections", "OrderedDict"), ("collections", "defaultdict"),
            ("copyreg", "_reconstructor"), ("builtins", "object"), ("builtins", "dict"),
            ("builtins", "list"), ("builtins", "int"), ("builtins", "str"),
            ("builtins", "set"), ("builtins", "tuple"), ("builtins", "float"),
            ("builtins", "bool")}


class PickledTokenizer(StandIn):
    _qualified_name = "keras Tokenizer"


class _TokenizerUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "__builtin__":
            module = "builtins"
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module in _TOKENIZER_MODULES and name == "Tokenizer":
            return PickledTokenizer
        raise pickle.UnpicklingError(f"the pickle holds {module}.{name}; only a Keras "
                                     "Tokenizer is read")


def is_pickle(data: bytes) -> bool:
    """Pickle protocols 2 and up start with the PROTO opcode."""
    return data[:1] == b"\x80"


def load_pickled_tokenizer(path: str, data: bytes) -> dict:
    """The Tokenizer's settings and word_index as a Tokenizer.to_json() 'config' would
    hold them; ModelError naming the file for anything that is not a fitted Tokenizer."""
    try:
        obj = _TokenizerUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError) as e:
        raise ModelError(f"{path}: cannot read the pickled vocabulary: {e}") from e
    if not isinstance(obj, PickledTokenizer):
        raise ModelError(f"{path}: the pickle holds a {type(obj).__name__}, not a Keras "
                         "Tokenizer")
    word_index = getattr(obj, "word_index", None)
    if not isinstance(word_index, dict) or not word_index:
        raise ModelError(f"{path}: the pickled Tokenizer has no word_index (fit it before "
                         "saving)")
    if getattr(obj, "analyzer", None) is not None:
        raise ModelError(f"{path}: the pickled Tokenizer has a custom analyzer, which "
                         "rnnsearch cannot reproduce")
    return {"word_index": dict(word_index), "oov_token": getattr(obj, "oov_token", None),
            "lower": getattr(obj, "lower", True), "char_level": getattr(obj, "char_level", False),
            "filters": getattr(obj, "filters", ""), "num_words": getattr(obj, "num_words", None),
            "split": getattr(obj, "split", " ")}
