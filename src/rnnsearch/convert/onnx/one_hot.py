"""One-hot float inputs of ONNX graphs: an encoder reading [batch, length, V] (or
[length, batch, V]) vectors and a decoder step reading the previous token as [batch, V] or
[batch, 1, V] (a Keras lstm_seq2seq model through tf2onnx, or a PyTorch model fed one-hot
tensors). A one-hot row times a weight matrix is a row of that matrix, i.e. an embedding
lookup, so such an input becomes an identity embedding (common/one_hot.py), but only when
the graph shows that every use of the input is such a product."""
from __future__ import annotations

import numpy as np

from ...errors import ModelError
from .graph import RNN_OPS, SHAPE_OPS, Graph, plain

# operators that only re-lay the vectors out (their first input is the data)
_LAYOUT = ("Identity", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Flatten", "Dropout",
           "Cast")


def is_float(dtype) -> bool:
    return np.issubdtype(dtype, np.floating)


def one_hot_width(name: str, dims: list, tag: str) -> int:
    """V, the static last axis of a one-hot input."""
    if not dims or not isinstance(dims[-1], int):
        raise ModelError(f"{tag} graph: the float input '{name}' {dims} is taken as one-hot "
                         "vectors, but its last axis (the vocabulary) has no fixed size; "
                         "export it with a static vocabulary axis")
    return int(dims[-1])


def one_hot_values(ids: np.ndarray, width: int, dtype) -> np.ndarray:
    """Probe input: the one-hot vectors of ids (any shape) -> ids.shape + (width,)."""
    return np.eye(width, dtype=dtype)[np.asarray(ids, np.int64)]


def token_ids(values: np.ndarray) -> np.ndarray:
    """The ids one-hot vectors (the probe's) stand for."""
    return np.asarray(values).argmax(axis=-1)


def check_multiplied(g: Graph, name: str, tag: str) -> None:
    """Every use of the one-hot input `name` (after layout-only operators) must be a product
    with a constant weight matrix: MatMul(x, W), Gemm(x, W, ...), or the X input of an
    LSTM/GRU/RNN operator (multiplied by its W). Anything else (a nonlinearity, an ArgMax, a
    Gather, an Add of another tensor) would make the vectors more than a lookup key:
    ModelError naming the input and the node."""
    where = f"{tag} graph: the one-hot input '{plain(name)}'"
    uses = [(name, node) for node in g.consumers.get(name, [])]
    products = 0
    while uses:   # a graph is acyclic: this ends
        tensor, node = uses.pop()
        use = _use(g, node, tensor)
        if use is None:
            raise ModelError(f"{where} reaches {node.describe()}; one-hot vectors must only be "
                             "multiplied by weight matrices (MatMul or Gemm with a constant "
                             "matrix, or the X input of an LSTM/GRU/RNN operator), the "
                             "product that makes them an embedding lookup")
        products += use == "product"
        if use == "layout":
            uses += [(node.outputs[0], n) for n in g.consumers.get(node.outputs[0], [])]
    if not products:
        raise ModelError(f"{where} is not multiplied by any weight matrix (MatMul, Gemm or an "
                         "LSTM/GRU/RNN operator)")


def _use(g: Graph, node, tensor: str) -> str | None:
    """How `node` uses `tensor`: "product" (times a weight matrix), "layout" (re-laid out,
    to be followed), "shape" (only its shape is read), or None (anything else)."""
    data = node.inputs[0] == tensor
    if node.op in SHAPE_OPS:
        return "shape"
    if node.op in _LAYOUT and data and not (
            node.op == "Cast" and not is_float(g.value(node.outputs[0]).dtype)):
        return "layout"
    weight = node.inputs[1] if len(node.inputs) > 1 else ""
    if node.op in ("MatMul", "Gemm") and data and weight != tensor and g.is_const(weight) \
            and np.ndim(g.value(weight)) == 2 and not node.attrs.get("transA", 0):
        return "product"
    if node.op in RNN_OPS and data:
        return "product"
    return None
