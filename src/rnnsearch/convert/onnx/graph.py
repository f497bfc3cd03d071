"""The ONNX converter's view of an encoder graph and a decoder-step graph.

Both graphs are loaded into one logical graph: every tensor name is prefixed with
`encoder/` or `decoder/`, and each decoder input that receives an encoder output (the
memory, precomputed keys, a source mask) becomes an Identity of that output, so that the
analysis can follow the memory from the decoder's attention back into the encoder.

The graphs are also *run* once on probe inputs (onnx.reference, pure NumPy) and every
intermediate value is kept. The analysis reads structure (which operator, which weights)
from the graph and uses the probe values for what the structure alone leaves open: which
axis is the batch or the source axis, which layer of a stacked state tensor a Gather
selects, which direction of a bidirectional output a Slice keeps. Probe sizes are chosen
to differ from every weight dimension so that axes can be told apart by their size.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ...errors import ModelError
from .budget import Budget

# operators that only move, select or copy values (no arithmetic)
MOVEMENT_OPS = {"Identity", "Cast", "Dropout", "Transpose", "Reshape", "Squeeze", "Unsqueeze",
                "Expand", "Flatten", "Tile", "Concat", "Slice", "Gather", "Split"}
RNN_OPS = ("LSTM", "GRU", "RNN")
SHAPE_OPS = {"Shape", "Size"}


@dataclass
class Node:
    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict
    graph: str  # "encoder" or "decoder"

    def describe(self) -> str:
        label = self.name or (self.outputs[0].split("/", 1)[1] if self.outputs else "?")
        return f"{self.graph} node '{label}' ({self.op})"


def plain(name: str) -> str:
    """A tensor name without its graph prefix, for messages."""
    return name.split("/", 1)[1] if "/" in name else name


def _attributes(node) -> dict:
    from onnx import helper, numpy_helper
    out = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        if hasattr(value, "dims") and hasattr(value, "data_type"):
            value = numpy_helper.to_array(value)
        elif isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode("utf-8", "replace") for v in value]
        out[a.name] = value
    return out


def _check_names(model, tag: str) -> None:
    """Every name in the graph is valid UTF-8 (protobuf hands invalid bytes over as lone
    surrogates, which fail later when a name is written back); refused here."""
    graph = model.graph
    names = [model.producer_name, graph.name]
    for node in graph.node:
        names += [node.name, node.op_type, node.domain, *node.input, *node.output]
        names += [a.name for a in node.attribute]
    for info in list(graph.input) + list(graph.output) + list(graph.value_info):
        names += [info.name] + [d.dim_param for d in info.type.tensor_type.shape.dim]
    for init in graph.initializer:
        names += [init.name] + [e.key for e in init.external_data] + \
            [e.value for e in init.external_data]
    names += [p.key + p.value for p in model.metadata_props]
    names += [o.domain for o in model.opset_import]
    try:
        "".join(names).encode("utf-8")
    except (UnicodeError, TypeError) as e:
        raise ModelError(f"{tag} graph: a name is not valid UTF-8 ({e})") from e


def _node_label(node) -> str:
    """A node's name, else its first output's, else its operator's."""
    return node.name or (node.output[0] if node.output else node.op_type)


def check_model(model, tag: str) -> None:
    """Refuse what the analysis cannot follow at all: names that are not text, foreign
    domains and subgraphs."""
    _check_names(model, tag)
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise ModelError(f"{tag} node '{_node_label(node)}' ({node.op_type}) is "
                             f"from the operator domain '{node.domain}'; only standard ONNX "
                             "operators are supported (export without custom/contrib ops)")
        for a in node.attribute:
            if a.g.node or a.graphs:
                raise ModelError(
                    f"{tag} node '{_node_label(node)}' ({node.op_type}) has a "
                    "subgraph (control flow); supported graphs are straight-line: export "
                    "nn.LSTM/nn.GRU/nn.RNN modules (they become LSTM/GRU/RNN operators) or "
                    "cells unrolled over one step, not Python loops or scripted control flow")


def input_infos(model) -> list[tuple[str, np.dtype, list]]:
    """(name, numpy dtype, dims: int or str/None for dynamic) of the real graph inputs."""
    from onnx import helper
    inits = {i.name for i in model.graph.initializer}
    out = []
    for i in model.graph.input:
        if i.name in inits:
            continue
        t = i.type.tensor_type
        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type))
        except (KeyError, TypeError, ValueError):
            raise ModelError(f"graph input {i.name!r} has no tensor element type ONNX knows "
                             f"(elem_type {t.elem_type})") from None
        dims = []
        for d in t.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            else:
                dims.append(d.dim_param or None)
        out.append((i.name, dtype, dims))
    return out


def run_all(model, feeds: dict, tag: str) -> dict[str, np.ndarray]:
    """Run the graph with onnx.reference and return every tensor's value (inputs,
    initializers, node outputs)."""
    import onnx
    from onnx.reference import ReferenceEvaluator
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    names = []
    seen = set()
    for node in probe.graph.node:
        for out in node.output:
            if out and out not in seen:
                seen.add(out)
                names.append(out)
    known = seen | set(feeds) | {i.name for i in model.graph.initializer}
    for output in model.graph.output:
        if output.name not in known:
            raise ModelError(f"{tag} graph: its output {output.name!r} is computed by no node")
    del probe.graph.output[:]
    probe.graph.output.extend([onnx.ValueInfoProto(name=n) for n in names])
    try:
        evaluator = ReferenceEvaluator(probe)
        Budget(model, tag).watch(evaluator)
        results = evaluator.run(None, feeds)
    except ModelError:
        raise
    except Exception as e:  # the reference runtime names the failing operator
        shapes = ", ".join(f"{k} {list(np.shape(v))}" for k, v in feeds.items())
        raise ModelError(f"cannot run the {tag} graph on probe inputs ({shapes}): "
                         f"{type(e).__name__}: {e}. The converter runs the graphs at a batch "
                         "size and source length of its own; export them with dynamic axes "
                         "for those (and check the graph runs at other lengths: some "
                         "exporters bake the example's length into a Reshape)") from e
    from onnx import numpy_helper
    values = {name: numpy_helper.to_array(i) for i in model.graph.initializer
              for name in [i.name]}
    values.update(feeds)
    for name, value in zip(names, results):
        values[name] = np.asarray(value)
    return values


@dataclass
class Probe:
    batch: int   # B: the batch (hypotheses) size used for the probe run
    source: int  # S: the source length


class Graph:
    """Encoder and decoder-step graphs as one, with probe values for every tensor."""

    def __init__(self, probe: Probe):
        self.probe = probe
        self.nodes: list[Node] = []
        self.producer: dict[str, Node] = {}
        self.consumers: dict[str, list[Node]] = defaultdict(list)
        self.values: dict[str, np.ndarray] = {}
        self.initializers: set[str] = set()
        self.inputs: dict[str, str] = {}   # prefixed input name -> graph tag
        self.outputs: dict[str, list[str]] = {"encoder": [], "decoder": []}
        self._input_dependent: dict[str, bool] = {}

    def add_graph(self, model, tag: str, values: dict, links: dict[str, str] | None = None):
        """links: this graph's input -> prefixed tensor of a graph added before (Identity)."""
        links = links or {}
        p = f"{tag}/"
        for init in model.graph.initializer:
            self.initializers.add(p + init.name)
        for name, value in values.items():
            self.values[p + name] = value
        for name, _, _ in input_infos(model):
            if name in links:
                node = Node("Identity", f"link {name}", [links[name]], [p + name], {}, tag)
                self._add(node)
            else:
                self.inputs[p + name] = tag
        for i, n in enumerate(model.graph.node):
            node = Node(n.op_type, n.name, [p + x if x else "" for x in n.input],
                        [p + x if x else "" for x in n.output], _attributes(n), tag)
            self._add(node)
        self.outputs[tag] = [p + o.name for o in model.graph.output]

    def _add(self, node: Node):
        self.nodes.append(node)
        for out in node.outputs:
            if out:
                self.producer[out] = node
        for inp in node.inputs:
            if inp:
                self.consumers[inp].append(node)

    # ---- constants ---------------------------------------------------------------------
    def input_dependent(self, name: str) -> bool:
        """True when the tensor depends on a graph input other than through its shape."""
        if name in self._input_dependent:
            return self._input_dependent[name]
        stack = [name]
        while stack:  # iterative post-order to survive deep graphs
            n = stack.pop()
            if n in self._input_dependent:
                continue
            node = self.producer.get(n)
            if node is None or node.op in SHAPE_OPS or node.op == "Constant":
                self._input_dependent[n] = n in self.inputs and node is None
                continue
            pending = [i for i in node.inputs if i and i not in self._input_dependent]
            if pending:
                stack.append(n)
                stack.extend(pending)
                continue
            self._input_dependent[n] = any(self._input_dependent.get(i, False)
                                           for i in node.inputs if i)
        return self._input_dependent[name]

    def is_const(self, name: str) -> bool:
        return bool(name) and not self.input_dependent(name)

    def const(self, name: str) -> np.ndarray:
        return self.values[name]

    def value(self, name: str) -> np.ndarray:
        if name not in self.values:
            raise ModelError(f"internal: no probe value for tensor '{plain(name)}'")
        return self.values[name]

    def depends_on(self, name: str, targets: set[str]) -> bool:
        """Does `name` depend on any of the tensors in `targets`?"""
        seen, stack = set(), [name]
        while stack:
            n = stack.pop()
            if n in targets:
                return True
            if n in seen:
                continue
            seen.add(n)
            node = self.producer.get(n)
            if node is not None and node.op not in SHAPE_OPS:
                stack.extend(i for i in node.inputs if i)
        return False

    # ---- layout ------------------------------------------------------------------------
    def canon(self, name_or_value, feature: bool = True) -> np.ndarray:
        """The value as [R, B, S, F]: row axes (layers, directions) first, then batch,
        source and feature axes; absent axes have size 1. Axes are recognised by their
        probe sizes; the last axis is the feature axis."""
        v = self.value(name_or_value) if isinstance(name_or_value, str) else \
            np.asarray(name_or_value)
        if v.ndim == 0:
            return v.reshape(1, 1, 1, 1)
        if not feature:
            v = v[..., None]
        lead = v.shape[:-1]
        b_axis = s_axis = None
        rows = []
        for i, n in enumerate(lead):
            if n == 1:
                continue
            if n == self.probe.batch and b_axis is None:
                b_axis = i
            elif n == self.probe.source and s_axis is None:
                s_axis = i
            else:
                rows.append(i)
        ones = [i for i, n in enumerate(lead) if n == 1]
        order = rows + [a for a in (b_axis, s_axis) if a is not None] + ones + [v.ndim - 1]
        t = np.transpose(v, order)
        r = int(np.prod([v.shape[i] for i in rows])) if rows else 1
        return t.reshape(r, v.shape[b_axis] if b_axis is not None else 1,
                         v.shape[s_axis] if s_axis is not None else 1, v.shape[-1])

    def single_reduce_axis(self, node: Node) -> int | None:
        """The one non-negative axis a Reduce* node reduces over (attribute, or the opset-18
        second input), or None when it reduces over several or they are not constant."""
        axes = node.attrs.get("axes")
        if axes is None and len(node.inputs) > 1 and node.inputs[1]:
            axes = [int(a) for a in np.asarray(self.value(node.inputs[1])).reshape(-1)]
        if axes is None or len(axes) != 1:
            return None
        ndim = self.value(node.inputs[0]).ndim
        return axes[0] + ndim if axes[0] < 0 else axes[0]

    def has_source_axis(self, name: str) -> bool:
        return self.probe.source > 1 and self.probe.source in self.value(name).shape

    def width(self, name: str) -> int:
        v = self.value(name)
        return int(v.shape[-1]) if v.ndim else 1

    # ---- movement ----------------------------------------------------------------------
    def data_inputs(self, node: Node) -> list[str]:
        """The inputs of a movement operator that carry data (not shapes or indices)."""
        if node.op == "Concat":
            return [i for i in node.inputs if i]
        if node.op == "Gather":
            return [node.inputs[0]] if self.is_const(node.inputs[1]) else []
        return [node.inputs[0]] if node.inputs and node.inputs[0] else []

    def movement_sources(self, name: str) -> set[str]:
        """Tensors reached from `name` backwards through movement operators only."""
        out, seen, stack = set(), set(), [name]
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            node = self.producer.get(n)
            if node is None or node.op not in MOVEMENT_OPS or (
                    node.op == "Cast" and not np.issubdtype(self.value(n).dtype, np.floating)):
                out.add(n)
                continue
            data = [i for i in self.data_inputs(node) if not self.is_const(i)]
            if not data:
                out.add(n)
                continue
            out.add(n)  # intermediate tensors count too: an origin may be any of them
            stack.extend(data)
        return out

    def strip(self, name: str, ops=("Identity", "Cast", "Dropout", "Squeeze", "Unsqueeze",
                                    "Reshape", "Transpose", "Flatten")) -> str:
        """Follow single-input layout operators back to the first other producer."""
        seen = set()
        while name not in seen:
            seen.add(name)
            node = self.producer.get(name)
            if node is None or node.op not in ops or not node.inputs:
                return name
            if node.op == "Dropout" and len(node.outputs) > 1 and node.outputs[0] != name:
                return name
            name = node.inputs[0]
        return name


@dataclass
class Registry:
    """Known meanings ("semantics") of tensors, matched by value.

    Each entry: a key such as ("input", "decoder/h", 0) or ("Y", 1, "cat"), the tensors
    it may come from (origins), and its canonical value [1, B, S, F]. `resolve` says which
    entry each row of a tensor equals, if that tensor is reached from the entry's origin
    through movement operators (and, for exact=False, sums)."""
    graph: Graph
    entries: list = field(default_factory=list)

    def add(self, key, origins, value: np.ndarray):
        self.entries.append((key, set(origins), np.asarray(value, dtype=np.float64)))

    def resolve(self, name: str, exact: bool = True) -> list | None:
        g = self.graph
        sources = g.movement_sources(name)
        v = g.canon(name).astype(np.float64)
        keys = []
        for r in range(v.shape[0]):
            row = v[r:r + 1]
            found = None
            for key, origins, value in self.entries:
                if not (origins & sources) or value.shape != row.shape:
                    continue
                if np.array_equal(row, value) or (
                        not exact and np.allclose(row, value, rtol=1e-5, atol=1e-6)):
                    found = key
                    break
            if found is None:
                return None
            keys.append(found)
        return keys
