"""Encoder graph analysis: source embedding, LSTM/GRU/RNN operators layer by layer, how
the two directions of a bidirectional layer are merged, and the meanings ("Y", "Yh",
"Yc") of the operators' outputs for the attention and bridge analyses."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import ModelError
from ..common import layouts
from ..common.one_hot import identity_embedding
from .affine import AffineWalker
from .graph import RNN_OPS, Graph, Node, Registry, plain

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
DEFAULT_ACTIVATIONS = {"LSTM": ["sigmoid", "tanh", "tanh"], "GRU": ["sigmoid", "tanh"]}


@dataclass
class RnnOp:
    """One ONNX LSTM/GRU/RNN operator with its weights in the canonical layout."""
    node: Node
    cell: str                 # lstm, gru, rnn_tanh, rnn_relu
    hidden: int
    directions: int
    reset_after: bool
    w_ih: list                # per direction [G*H, in] (ONNX input columns)
    w_hh: list                # per direction [G*H, H]
    b_ih: list
    b_hh: list
    layout: int

    @property
    def y(self) -> str:
        return self.node.outputs[0]

    def out(self, i: int) -> str:
        return self.node.outputs[i] if len(self.node.outputs) > i else ""


def read_rnn_op(g: Graph, node: Node, decoder: bool = False) -> RnnOp:
    """Attributes and weights of an ONNX RNN operator; ModelError for anything the
    canonical cells cannot express."""
    where = node.describe()
    attrs = node.attrs
    direction = attrs.get("direction", "forward")
    if direction not in ("forward", "bidirectional") or (decoder and direction != "forward"):
        raise ModelError(f"{where}: direction '{direction}' is not supported (supported: "
                         f"'forward'{'' if decoder else ' and bidirectional'})")
    dirs = 2 if direction == "bidirectional" else 1
    for bad in ("clip", "activation_alpha", "activation_beta"):
        if bad in attrs:
            raise ModelError(f"{where}: attribute '{bad}' is not supported")
    if attrs.get("input_forget", 0):
        raise ModelError(f"{where}: input_forget=1 (coupled gates) is not supported")
    acts = [a.lower() for a in attrs.get("activations", [])]
    cell = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn_tanh"}[node.op]
    if node.op == "RNN":
        acts = acts or ["tanh"] * dirs
        if set(acts) == {"relu"}:
            cell = "rnn_relu"
        elif set(acts) != {"tanh"}:
            raise ModelError(f"{where}: activations {acts} are not supported (tanh or relu)")
    elif acts and acts != DEFAULT_ACTIVATIONS[node.op] * dirs:
        raise ModelError(f"{where}: activations {acts} are not supported (only the defaults "
                         f"{DEFAULT_ACTIVATIONS[node.op]})")
    hidden = int(attrs["hidden_size"])
    names = node.inputs + [""] * (8 - len(node.inputs))
    for i, label in ((1, "W"), (2, "R"), (3, "B"), (7, "P")):
        if names[i] and not g.is_const(names[i]):
            raise ModelError(f"{where}: input {label} ('{plain(names[i])}') is computed from "
                             "the graph inputs; weights must be initializers")
    if names[7] and np.any(g.value(names[7]) != 0):
        raise ModelError(f"{where}: peephole weights (input P) are not supported")
    G = GATES[node.op]
    W = g.value(names[1]).astype(np.float32)
    R = g.value(names[2]).astype(np.float32)
    Bv = g.value(names[3]).astype(np.float32) if names[3] else \
        np.zeros((dirs, 2 * G * hidden), np.float32)
    reorder = {"LSTM": layouts.lstm_from_onnx, "GRU": layouts.gru_from_onnx,
               "RNN": lambda a: np.asarray(a, np.float32)}[node.op]
    return RnnOp(node, cell, hidden, dirs, bool(attrs.get("linear_before_reset", 0)),
                 [reorder(W[d]) for d in range(dirs)], [reorder(R[d]) for d in range(dirs)],
                 [reorder(Bv[d, :G * hidden]) for d in range(dirs)],
                 [reorder(Bv[d, G * hidden:]) for d in range(dirs)], int(attrs.get("layout", 0)))


def op_state_values(g: Graph, op: RnnOp):
    """Per direction: Y as [B, S, H] and final Y_h / Y_c as [B, H] (probe values)."""
    def y_dir(d):
        y = g.value(op.y)
        return np.transpose(y[:, d], (1, 0, 2)) if op.layout == 0 else y[:, :, d]

    def final(i, d):
        name = op.out(i)
        if not name:
            return None
        v = g.value(name)
        return v[d] if op.layout == 0 else v[:, d]
    ys = [y_dir(d) for d in range(op.directions)]
    # without a Y_h output the final state is read off Y (the probe has no padding)
    hs = [final(1, d) if op.out(1) else ys[d][:, -1 if d == 0 else 0]
          for d in range(op.directions)]
    cs = [final(2, d) for d in range(op.directions)]
    return ys, hs, cs


@dataclass
class EncoderInfo:
    source_input: str
    embedding: np.ndarray
    layers: list[RnnOp]
    w_ih: list = field(default_factory=list)  # per layer, per direction: relative to input
    b_ih: list = field(default_factory=list)
    merge: str | None = None                  # decided by the attention's values

    @property
    def top(self) -> RnnOp:
        return self.layers[-1]

    @property
    def bidirectional(self) -> bool:
        return self.top.directions == 2

    @property
    def cat_width(self) -> int:
        return self.top.hidden * self.top.directions


def _register_op(reg: Registry, g: Graph, k: int, op: RnnOp):
    """Meanings of layer k's outputs: Y per direction, concatenated and summed, and the
    final hidden (Yh) and cell (Yc) states likewise."""
    ys, hs, cs = op_state_values(g, op)
    kinds = {"Y": (ys, {op.y}), "Yh": (hs, {op.out(1), op.y}), "Yc": (cs, {op.out(2), op.y})}
    for kind, (values, origins) in kinds.items():
        origins = {o for o in origins if o}
        if values[0] is None:
            continue
        for d in range(op.directions):
            reg.add((kind, k, d), origins, g.canon(values[d]))
        if op.directions == 2:
            reg.add((kind, k, "cat"), origins, g.canon(np.concatenate(values, -1)))
            reg.add((kind, k, "sum"), origins, g.canon(values[0] + values[1]))


def relative_to_cat(matrix: np.ndarray, key, hidden: int, directions: int) -> np.ndarray:
    """An atom's matrix re-expressed over the concatenation [forward; backward] of a layer's
    outputs (or its final states): key[-1] is a direction, 'cat' or 'sum'."""
    part = key[-1]
    if directions == 1:
        return matrix
    out = np.zeros((matrix.shape[0], 2 * hidden))
    if part == "cat":
        out[:] = matrix
    elif part == "sum":
        out[:, :hidden] = matrix
        out[:, hidden:] = matrix
    else:
        out[:, part * hidden:(part + 1) * hidden] = matrix
    return out


def _source_embedding(g: Graph, enc_nodes: list, reg: Registry, source_input: str,
                      one_hot: bool) -> np.ndarray:
    """The source embedding table, its output registered as ("emb_src",): the table a
    Gather indexes with the source ids, or for one-hot vectors the identity, the input
    itself being the embedding (convert/onnx/one_hot.py checked it is only multiplied by
    weight matrices, which the first layer's W then absorbs)."""
    if one_hot:
        reg.add(("emb_src",), {source_input}, g.canon(source_input))
        return identity_embedding(g.width(source_input))
    # Gather(table, ids) with the ids coming from the source input
    gathers = [n for n in enc_nodes if n.op == "Gather" and g.is_const(n.inputs[0])
               and g.value(n.inputs[0]).ndim == 2 and n.attrs.get("axis", 0) == 0
               and g.depends_on(n.inputs[1], {source_input})]
    tables = {n.inputs[0] for n in gathers}
    if not gathers:
        raise ModelError("encoder graph: no embedding lookup (Gather from a [vocabulary, "
                         f"embedding] initializer) of the source input '{plain(source_input)}'")
    if len(tables) > 1:
        raise ModelError("encoder graph: the source ids index several tables "
                         f"({sorted(plain(t) for t in tables)}); one embedding is supported")
    table = next(iter(tables))
    emb_outputs = {n.outputs[0] for n in gathers}
    reg.add(("emb_src",), emb_outputs, g.canon(g.value(next(iter(emb_outputs)))))
    return g.value(table).astype(np.float32)


def analyze_encoder(g: Graph, walker: AffineWalker, reg: Registry, source_input: str,
                    one_hot: bool = False) -> EncoderInfo:
    enc_nodes = [n for n in g.nodes if n.graph == "encoder"]
    embedding = _source_embedding(g, enc_nodes, reg, source_input, one_hot)
    ops = [n for n in enc_nodes if n.op in RNN_OPS]
    if not ops:
        loops = [n for n in enc_nodes if n.op in ("Loop", "Scan")]
        hint = f" ({loops[0].describe()} is a loop: not supported)" if loops else (
            " (the RNN seems unrolled over the example's time steps, which torch's dynamo "
            "exporter does for nn.RNN: export with torch.onnx.export(..., dynamo=False))"
            if any(n.op == "Tanh" for n in enc_nodes) else "")
        raise ModelError("encoder graph: no LSTM, GRU or RNN operator" + hint + "; the "
                         "encoder must be nn.LSTM/nn.GRU/nn.RNN (or Keras LSTM/GRU) layers")
    info = EncoderInfo(source_input, embedding, [])
    for k, node in enumerate(ops):
        op = read_rnn_op(g, node)
        where = node.describe()
        if info.layers and (op.cell, op.hidden, op.directions, op.reset_after) != (
                info.layers[0].cell, info.layers[0].hidden, info.layers[0].directions,
                info.layers[0].reset_after):
            raise ModelError(f"{where}: all encoder layers must have the same cell type, "
                             "hidden size and directions")
        for i, label in ((5, "initial_h"), (6, "initial_c")):
            name = node.inputs[i] if len(node.inputs) > i else ""
            if name and (not g.is_const(name) or np.any(g.value(name) != 0)):
                raise ModelError(f"{where}: the encoder RNN starts from a non-zero or given "
                                 f"{label} ('{plain(name)}'); only zero initial states are "
                                 "supported")
        x = walker.of(node.inputs[0])
        in_width = None
        w_rel = np.zeros((x.width, 0))
        parts = []
        for atom, m in x.terms.items():
            keys = reg.resolve(atom)
            if keys is None or len(set(keys)) != 1:
                producer = g.producer.get(atom)
                what = producer.describe() if producer else f"input '{plain(atom)}'"
                raise ModelError(f"{where}: its input comes from {what}, which is neither the "
                                 "source embedding nor the previous encoder layer's output")
            key = keys[0]
            if k == 0 and key == ("emb_src",):
                parts.append(("emb", m))
            elif k > 0 and key[0] == "Y" and key[1] == k - 1:
                prev = info.layers[-1]
                parts.append(("prev", relative_to_cat(m, key, prev.hidden, prev.directions)))
            else:
                raise ModelError(f"{where}: layer {k} reads {key[0]} of layer "
                                 f"{key[1] if len(key) > 1 else '-'}; each encoder layer must "
                                 "read only the layer below (no residual or skip connections)")
        for _, m in parts:
            w_rel = m if in_width is None else w_rel + m
            in_width = m.shape[1]
        if in_width is None:
            raise ModelError(f"{where}: its input does not depend on the source")
        for w, b in zip(op.w_ih, op.b_ih):
            if w.shape[1] != w_rel.shape[0] or b.shape != (w.shape[0],) or \
                    x.bias.shape != (w.shape[1],):
                raise ModelError(f"{where}: its input weights {list(w.shape)}, input bias "
                                 f"{list(b.shape)} and input width {w_rel.shape[0]} disagree")
        info.layers.append(op)
        # compose the input map (an embedding projection, a scale) into W_ih
        info.w_ih.append([(w.astype(np.float64) @ w_rel).astype(np.float32) for w in op.w_ih])
        info.b_ih.append([(b + w.astype(np.float64) @ x.bias).astype(np.float32)
                          for w, b in zip(op.w_ih, op.b_ih)])
        _register_op(reg, g, k, op)
    return info


def memory_matrix(enc: EncoderInfo, matrix: np.ndarray, key, where: str) -> np.ndarray:
    """An atom's matrix (an atom meaning the top layer's outputs) over the memory."""
    if key[0] != "Y" or key[1] != len(enc.layers) - 1:
        raise ModelError(f"{where}: reads {key[0]} of encoder layer {key[1]}; attention must "
                         "read the top encoder layer's outputs")
    top = enc.top
    cat = relative_to_cat(matrix, key, top.hidden, top.directions)
    if enc.merge == "sum":
        if not np.allclose(cat[:, :top.hidden], cat[:, top.hidden:], rtol=1e-6, atol=1e-7):
            raise ModelError(f"{where}: reads the two directions separately, but the memory "
                             "sums them")
        return cat[:, :top.hidden]
    return cat
