"""Reading a framework's PyTorch checkpoint without the framework (OpenNMT-py, JoeyNMT).

A checkpoint is a pickle. torch.load reads it here with a restricted unpickler: tensors,
plain containers and argparse.Namespace load for real, classes of the frameworks and their
libraries (options, vocabularies, optimizers, tokenizers) become inert StandIn objects that
keep only their pickled state, and anything else (os.system, say) is refused, so no pickled
code runs. Also here: the checkpoint's tensors as float32 arrays, and its vocabularies as
token lists a vocabulary file can hold.
"""
from __future__ import annotations

import pickle
import sys
import types

import numpy as np

from ...errors import ModelError
from ...limits import MAX_TENSOR_ELEMENTS
from ...safe_files import require_regular_file
from .read_check import checked_in_child

# classes and functions a checkpoint may name, loaded for real
_ALLOWED = {
    ("collections", "OrderedDict"), ("collections", "Counter"), ("collections", "defaultdict"),
    ("argparse", "Namespace"), ("copyreg", "_reconstructor"), ("_codecs", "encode"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "dict"), ("builtins", "list"),
    ("builtins", "tuple"), ("builtins", "object"), ("builtins", "slice"), ("builtins", "int"),
    ("builtins", "float"), ("builtins", "complex"), ("builtins", "bytearray"),
    ("builtins", "bool"), ("builtins", "str"), ("builtins", "bytes"),
    ("torch", "Size"), ("torch", "device"),
    ("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"), ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"), ("torch._utils", "_rebuild_qtensor"),
    ("torch._tensor", "_rebuild_from_type_v2"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}
_TORCH_DTYPES = {"float32", "float", "float16", "half", "bfloat16", "float64", "double",
                 "int64", "long", "int32", "int", "int16", "int8", "uint8", "bool"}
# modules whose classes become inert stand-ins (options, vocabularies, optimizers, tokenizers)
_STAND_IN_PREFIXES = ("onmt.", "torchtext.", "joeynmt.", "pyonmttok", "configargparse",
                      "torch.optim", "functools", "subword_nmt", "sentencepiece", "numpy.random",
                      "pathlib", "yaml")


class StandIn:
    """An unpickled object of a framework class the converter does not import: keeps the
    constructor arguments (`_args`) and the pickled state (attributes, or `_state`)."""
    _qualified_name = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj._args = args
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict) \
                and (state[0] is None or isinstance(state[0], dict)):
            state = dict(state[0] or {}, **state[1])   # (dict, slots) form
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self._state = state

    def __call__(self, *args, **kwargs):  # e.g. a defaultdict factory
        return None

    def __repr__(self):
        return f"<stand-in {self._qualified_name}>"


_stand_in_classes: dict[str, type] = {}


def _stand_in(module: str, name: str) -> type:
    key = f"{module}.{name}"
    if key not in _stand_in_classes:
        _stand_in_classes[key] = type(name, (StandIn,), {"_qualified_name": key})
    return _stand_in_classes[key]


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "__builtin__":
            module = "builtins"
        if (module, name) in _ALLOWED or (module == "torch" and name in _TORCH_DTYPES):
            return super().find_class(module, name)
        if module.startswith(_STAND_IN_PREFIXES) or module in ("functools", "pathlib"):
            return _stand_in(module, name)
        raise pickle.UnpicklingError(f"the checkpoint pickles {module}.{name}, which the "
                                     "converter does not read")


def _restricted_load(file, **kwargs):
    return _RestrictedUnpickler(file, **kwargs).load()


def _restricted_loads(data, **kwargs):
    import io
    return _RestrictedUnpickler(io.BytesIO(data), **kwargs).load()


_restricted_pickle = types.ModuleType("rnnsearch_restricted_pickle")
_restricted_pickle.Unpickler = _RestrictedUnpickler
_restricted_pickle.load = _restricted_load     # torch's legacy format reads headers with it
_restricted_pickle.loads = _restricted_loads
_restricted_pickle.__name__ = "rnnsearch_restricted_pickle"


@checked_in_child("checkpoint")
def load_checkpoint(path: str):
    """torch.load a framework checkpoint without the framework and without running pickled
    code: framework classes become StandIn objects."""
    try:
        import torch
    except ImportError as e:  # pragma: no cover
        raise ModelError("reading a PyTorch checkpoint needs torch: pip install "
                         "'rnnsearch[torch]' (it pins the CPU build the project tests)") from e
    require_regular_file(path, "checkpoint")
    try:
        return torch.load(path, map_location="cpu", pickle_module=_restricted_pickle,
                          weights_only=False)
    except pickle.UnpicklingError as e:
        raise ModelError(f"{path}: {e}") from e
    except RecursionError as e:
        raise ModelError(f"{path}: the checkpoint is nested too deeply") from e
    except Exception as e:   # torch's zip and pickle readers fail in many ways on bad input
        raise ModelError(f"{path}: cannot read the checkpoint: {type(e).__name__}: {e}") from e


def to_numpy(tensor, where: str = "tensor") -> np.ndarray:
    """A float tensor (any float dtype) as a float32 array. A tensor can be a view that
    repeats a small stored array (stride 0), so its size is bounded before it is copied."""
    import torch
    if not isinstance(tensor, torch.Tensor):
        raise ModelError(f"{where}: expected a tensor, got {type(tensor).__name__}")
    if tensor.numel() > MAX_TENSOR_ELEMENTS:
        raise ModelError(f"{where}: {tensor.numel()} elements; at most {MAX_TENSOR_ELEMENTS} "
                         "are supported")
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise ModelError(f"{where}: dtype {tensor.dtype} is not a real number type")
    return np.ascontiguousarray(tensor.detach().float().cpu().numpy(), dtype=np.float32)


def sanitize_vocabulary(tokens, side: str) -> list[str]:
    """Tokens as strings; entries a vocabulary file cannot hold (empty, with a newline, or
    repeated) become unreachable placeholders so that ids keep their meaning."""
    out, seen = [], set()
    for index, token in enumerate(tokens):
        token = str(token)
        if not token or "\n" in token or token in seen:
            replacement = f"<unusable-{side}-token-{index}>"
            print(f"warning: {side} vocabulary entry {index} ({token!r}) cannot be stored; "
                  f"renamed {replacement!r}", file=sys.stderr)
            token = replacement
        seen.add(token)
        out.append(token)
    return out
