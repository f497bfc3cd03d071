"""Bounds on what an ONNX graph may make the converter compute.

The converter runs the graphs once on small probe inputs (graph.run_all). A hostile graph
can ask for a huge tensor from tiny inputs (ConstantOfShape of [2^20, 2^20], an Expand, a
Tile, a broadcast of two long vectors, a Gather of a long index list), or declare an
initializer of 2^40 elements in a 161-byte file. Initializers are checked against their
data when the graph is loaded; while the graph runs, every operator that can make a
tensor larger than its inputs has its output size computed before it runs, and the bytes
of all values kept are counted. Both limits scale with the model's own weights, so real
models (whose probe activations are tiny next to their weights) never meet them.
"""
from __future__ import annotations

import numpy as np

from ...errors import ModelError
from ...limits import MAX_TENSOR_ELEMENTS, physical_memory

MIN_TENSOR_BYTES = 256 * 2**20    # one value: at least this, or twice the largest weight
MIN_TOTAL_BYTES = 2 * 2**30       # all values of a run: at least this, or 8x the weights

# operators whose output is the broadcast of their inputs
_BROADCASTING = {"Add", "Sub", "Mul", "Div", "Pow", "Mod", "Where", "Equal", "Greater",
                 "GreaterOrEqual", "Less", "LessOrEqual", "And", "Or", "Xor", "Max", "Min",
                 "Sum", "Mean", "PRelu", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor"}


def check_initializers(model, tag: str) -> None:
    """Every initializer's dims are non-negative, bounded, and match the data it holds."""
    from onnx import helper
    for init in model.graph.initializer:
        where = f"{tag} graph: initializer '{init.name}'"
        dims = list(init.dims)
        if any(d < 0 for d in dims):
            raise ModelError(f"{where} has negative dims {dims}")
        count = 1
        for d in dims:
            count *= d
        if count > MAX_TENSOR_ELEMENTS:
            raise ModelError(f"{where} has dims {dims} ({count} elements); at most "
                             f"{MAX_TENSOR_ELEMENTS} are supported")
        try:
            itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type)).itemsize
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"{where} has an unknown data type {init.data_type}") from e
        if init.HasField("raw_data"):
            held = len(init.raw_data) // max(itemsize, 1)
        else:
            held = max(len(init.float_data), len(init.int32_data), len(init.int64_data),
                       len(init.double_data), len(init.uint64_data), len(init.string_data))
        if held != count:
            raise ModelError(f"{where} has dims {dims} ({count} elements) but holds {held}")


class Budget:
    """Counts the bytes of the values one graph run keeps; refuses an operator whose output
    would be too large before it runs."""

    def __init__(self, model, tag: str):
        sizes = [_initializer_bytes(i) for i in model.graph.initializer] or [0]
        self.tag = tag
        self.per_tensor = max(MIN_TENSOR_BYTES, 2 * max(sizes))
        self.total = min(max(MIN_TOTAL_BYTES, 8 * sum(sizes)), physical_memory() // 2)
        self.used = 0

    def watch(self, evaluator) -> None:
        """Wrap every operator of an onnx.reference evaluator."""
        for node in getattr(evaluator, "rt_nodes_", []):
            node._run = self._guarded(node, node._run)

    def _guarded(self, node, run):
        def guarded(*inputs, **kwargs):
            elements = _output_elements(node.onnx_node, inputs)
            if elements is not None and elements * 4 > self.per_tensor:
                self._refuse(node, f"would make a tensor of {elements} elements")
            outputs = run(*inputs, **kwargs)
            for value in outputs if isinstance(outputs, (tuple, list)) else (outputs,):
                self.used += getattr(value, "nbytes", 0)
            if self.used > self.total:
                self._refuse(node, f"makes the run hold more than {self.total} bytes")
            return outputs
        return guarded

    def _refuse(self, node, why: str):
        name = getattr(node.onnx_node, "name", "") or \
            (node.onnx_node.output[0] if node.onnx_node.output else "?")
        raise ModelError(f"{self.tag} graph: node '{name}' ({node.onnx_node.op_type}) {why} "
                         "on the converter's small probe inputs; a real encoder or decoder "
                         "step does not")


def _initializer_bytes(init) -> int:
    count = 1
    for d in init.dims:
        count *= max(int(d), 0)
    return count * 8


def _shape(value):
    return tuple(np.shape(value)) if value is not None else None


def _count(shape) -> int:
    n = 1
    for d in shape:
        n *= max(int(d), 0)
    return n


def _output_elements(proto, inputs) -> int | None:
    """The size of the node's output from its inputs, for operators that can grow tensors
    (None: not one of those, or not computable, and the operator runs unchecked)."""
    op = proto.op_type
    try:
        if op == "ConstantOfShape":
            return _count(np.asarray(inputs[0]).ravel())
        if op == "Expand":
            target = [int(d) for d in np.asarray(inputs[1]).ravel()]
            return _count(_broadcast(_shape(inputs[0]), target))
        if op == "Tile":
            repeats = [int(d) for d in np.asarray(inputs[1]).ravel()]
            return _count(np.shape(inputs[0])) * _count(repeats)
        if op == "Range":
            start, limit, delta = (float(np.asarray(v).ravel()[0]) for v in inputs[:3])
            return int(max(np.ceil((limit - start) / delta), 0)) if delta else 0
        if op in _BROADCASTING:
            shapes = [_shape(v) for v in inputs if v is not None]
            return _count(_broadcast(*shapes)) if shapes else None
        if op in ("MatMul", "MatMulInteger"):
            a, b = _shape(inputs[0]), _shape(inputs[1])
            if len(a) >= 2 and len(b) >= 2:
                return _count(_broadcast(a[:-2], b[:-2])) * a[-2] * b[-1]
        if op == "Gather":
            data = _shape(inputs[0])
            axis = next((a.i for a in proto.attribute if a.name == "axis"), 0) % len(data)
            return _count(_shape(inputs[1])) * _count(data[:axis] + data[axis + 1:])
        if op == "OneHot":
            return _count(_shape(inputs[0])) * int(np.asarray(inputs[1]).ravel()[0])
        if op == "Pad":
            pads = [int(p) for p in np.asarray(inputs[1]).ravel()]
            shape = list(_shape(inputs[0]))
            return _count([d + pads[i] + pads[i + len(shape)] for i, d in enumerate(shape)]) \
                if len(pads) == 2 * len(shape) else None
    except (TypeError, ValueError, IndexError, OverflowError, ZeroDivisionError):
        return None
    return None


def _broadcast(*shapes) -> tuple:
    """numpy's broadcasting rule on shapes of any size (no arrays are made)."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(rank):
        dims = {s[len(s) - rank + axis] for s in shapes if len(s) - rank + axis >= 0}
        dims.discard(1)
        out.append(max(dims) if dims else 1)
    return tuple(out)
