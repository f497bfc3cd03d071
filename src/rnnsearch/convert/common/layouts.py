"""Gate orders and other layout facts shared by the converters (DESIGN.md §2).

The canonical layout is PyTorch's: LSTM gates [i, f, g, o], GRU gates [r, z, n], weights
[out, in]. Each helper returns new float32 arrays.
"""
from __future__ import annotations

import numpy as np


def reorder_gates(array: np.ndarray, order: str, target: str, axis: int = 0) -> np.ndarray:
    """Permute the gate blocks along `axis`: e.g. order "iofc" (ONNX LSTM) to "ifco"
    (canonical, with c = g). Letters name gates; both strings use the same letters."""
    if sorted(order) != sorted(target):
        raise ValueError(f"gate orders {order!r} and {target!r} differ")
    blocks = np.split(np.asarray(array, dtype=np.float32), len(order), axis=axis)
    return np.concatenate([blocks[order.index(g)] for g in target], axis=axis)


# canonical gate orders, written with the letters the frameworks use
CANONICAL_LSTM = "ifco"   # i, f, g(=c), o
CANONICAL_GRU = "rzh"     # r, z, n(=h)
ONNX_LSTM = "iofc"
ONNX_GRU = "zrh"
KERAS_LSTM = "ifco"       # kernels are [in, 4H]: transpose, order already i, f, c, o
KERAS_GRU = "zrh"


def lstm_from_onnx(w: np.ndarray) -> np.ndarray:
    return reorder_gates(w, ONNX_LSTM, CANONICAL_LSTM)


def gru_from_onnx(w: np.ndarray) -> np.ndarray:
    return reorder_gates(w, ONNX_GRU, CANONICAL_GRU)


def gru_from_keras(kernel: np.ndarray) -> np.ndarray:
    """Keras GRU kernel [in, 3H] with gates z, r, h -> canonical [3H, in] r, z, n."""
    return reorder_gates(np.asarray(kernel, np.float32).T, KERAS_GRU, CANONICAL_GRU)


def lstm_from_keras(kernel: np.ndarray) -> np.ndarray:
    """Keras LSTM kernel [in, 4H] with gates i, f, c, o -> canonical [4H, in]."""
    return np.ascontiguousarray(np.asarray(kernel, np.float32).T)
