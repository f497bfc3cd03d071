"""The decoder's initial state: which encoder output each decoder state input receives
(by equal names, --link DEC=ENC, or --zero-state DEC), and how that encoder output is
computed from the encoder's final states.

Recognised, per decoder layer l (the row of the encoder output that feeds layer l):
  act(affine(final states of one encoder layer)) with act tanh, relu or nothing,
where the final states are Y_h / Y_c of the encoder's RNN operators (or the last/first
position of their Y), selected by Gather/Slice and combined by Concat, Add or Linear.
Stacking over decoder layers (Concat on the layer axis, Expand, Tile, repeat) is followed
row by row. An identity combination is the canonical `last` bridge, anything else
`dense` (e.g. Bahdanau's tanh(W_s h_backward)).
"""
from __future__ import annotations

import numpy as np

from ...errors import ModelError
from .affine import AffineWalker
from .decoder import DecoderInfo
from .encoder import EncoderInfo, memory_matrix, relative_to_cat
from .graph import Graph, Registry, plain

_ROW_MOVES = ("Identity", "Cast", "Dropout", "Unsqueeze", "Squeeze", "Reshape", "Transpose",
              "Expand", "Tile", "Flatten")


def _rows_equal(g: Graph, name: str, target: np.ndarray) -> int | None:
    v = g.canon(name)
    if v.shape[1:] != target.shape[1:]:
        return None
    for q in range(v.shape[0]):
        if np.array_equal(v[q:q + 1], target):
            return q
    return None


def _row_source(g: Graph, name: str, target: np.ndarray):
    """Follow row-moving operators from `name` to the tensor whose row equals `target`."""
    while True:
        node = g.producer.get(name)
        if node is None:
            break
        rank = g.value(name).ndim
        if node.op in _ROW_MOVES and g.width(node.inputs[0]) == g.width(name) and \
                _rows_equal(g, node.inputs[0], target) is not None:
            name = node.inputs[0]
            continue
        if node.op == "Concat" and node.attrs["axis"] not in (-1, rank - 1):
            hit = [i for i in node.inputs if i and _rows_equal(g, i, target) is not None]
            if hit:
                name = hit[0]
                continue
        if node.op in ("Slice", "Gather") and g.width(node.inputs[0]) == g.width(name) and \
                _rows_equal(g, node.inputs[0], target) is not None:
            name = node.inputs[0]
            continue
        break
    q = _rows_equal(g, name, target)
    return name, q


def _final_state_map(g, walker, reg, enc: EncoderInfo, name: str, q: int, kind: str,
                     where: str):
    """(activation, W [out, F], b, encoder layer) for row q of `name` = act(W f + b)."""
    node = g.producer.get(name)
    act = "identity"
    pre = name
    if node is not None and node.op in ("Tanh", "Relu"):
        act, pre = node.op.lower(), node.inputs[0]
    aff = walker.of(pre)
    top = enc.top
    F = top.hidden * top.directions
    w = np.zeros((aff.width, F))
    layers = set()
    means = [a for a in aff.terms if _is_memory_mean(g, walker, reg, enc, a)]
    if means:
        if len(means) != len(aff.terms):
            raise ModelError(f"{where}: combines the mean of the memory with other tensors")
        return act, sum(aff.terms[a] for a in means), aff.bias, "mean"
    for atom, m in aff.terms.items():
        keys = reg.resolve(atom)
        key = None
        if keys is not None:
            key = keys[q] if len(keys) > q else keys[0] if len(keys) == 1 else None
        if key is None or key[0] not in ("Yh", "Yc"):
            producer = g.producer.get(atom)
            what = producer.describe() if producer else f"input '{plain(atom)}'"
            raise ModelError(f"{where}: computed from {what}, which is not a final state of the "
                             "encoder (supported bridges: act(Linear(final states)), the final "
                             "states themselves, or zeros)")
        if key[0] != kind:
            ours, theirs = ("hidden", "cell") if kind == "Yh" else ("cell", "hidden")
            raise ModelError(f"{where}: a decoder {ours} state computed from the encoder's "
                             f"final {theirs} states is not supported")
        layers.add(key[1])
        w += relative_to_cat(m, key, top.hidden, top.directions)
    if len(layers) != 1:
        raise ModelError(f"{where}: combines the final states of encoder layers {sorted(layers)};"
                         " one layer per decoder layer is supported")
    return act, w, aff.bias, layers.pop()


def _is_memory_mean(g: Graph, walker, reg, enc, atom: str) -> bool:
    """ReduceMean of the memory over the source positions."""
    node = g.producer.get(atom)
    if node is None or node.op != "ReduceMean":
        return False
    x = node.inputs[0]
    xv = g.value(x)
    axis = g.single_reduce_axis(node)
    if axis is None or axis >= xv.ndim - 1 or xv.shape[axis] != g.probe.source:
        return False
    aff = walker.of(x)
    total = None
    for a, m in aff.terms.items():
        keys = reg.resolve(a)
        if keys is None or len(set(keys)) != 1:
            return False
        mm = memory_matrix(enc, m, keys[0], node.describe())
        total = mm if total is None else total + mm
    return total is not None and not np.any(aff.bias) and total.shape[0] == total.shape[1] \
        and np.allclose(total, np.eye(total.shape[0]))


def _source(dec_input: str, links: dict, zeros: set, what: str):
    name = plain(dec_input)
    if name in zeros:
        return None
    if name in links:
        return "encoder/" + links[name]
    raise ModelError(f"decoder input '{name}' ({what}) is not an encoder output: give the "
                     "encoder output the same name, pass --link "
                     f"{name}=ENCODER_OUTPUT, or --zero-state {name} if it starts at zeros")


def analyze_bridge(g: Graph, walker: AffineWalker, reg: Registry, enc: EncoderInfo,
                   dec: DecoderInfo, links: dict, zeros: set):
    """Returns (bridge config, tensors)."""
    L = len(dec.layers)
    is_lstm = dec.config["cell"] == "lstm"
    hidden_maps, cell_maps, sources = [], [], []
    for layer in range(L):
        for kind, keys, out in (("Yh", dec.h_keys, hidden_maps), ("Yc", dec.c_keys, cell_maps)):
            if kind == "Yc" and not is_lstm:
                continue
            _, dec_input, row = keys[layer]
            what = f"layer {layer}'s previous {'hidden' if kind == 'Yh' else 'cell'} state"
            src = _source(dec_input, links, zeros, what)
            if src is None:
                out.append(None)
                continue
            if src not in g.values:
                raise ModelError(f"--link: the encoder has no output '{plain(src)}'")
            if g.value(src).shape != g.value(dec_input).shape:
                raise ModelError(f"decoder input '{plain(dec_input)}' has shape "
                                 f"{list(g.value(dec_input).shape)} but the encoder output "
                                 f"'{plain(src)}' linked to it has "
                                 f"{list(g.value(src).shape)} (probe sizes)")
            target = g.canon(src)[row:row + 1]
            if kind == "Yc" and (src, row) == sources[-1]:
                out.append("copy")
                continue
            name, q = _row_source(g, src, target)
            if q is None:
                raise ModelError(f"encoder output '{plain(src)}': cannot follow row {row} back")
            where = f"encoder output '{plain(src)}' (initial {what})"
            out.append(_final_state_map(g, walker, reg, enc, name, q, kind, where))
            if kind == "Yh":
                sources.append((src, row))
        if len(sources) < layer + 1:
            sources.append(None)

    if all(m is None for m in hidden_maps):
        if any(m is not None for m in cell_maps):
            raise ModelError("the decoder's hidden state starts at zeros but its cell state "
                             "does not; not supported")
        return {"type": "zeros"}, {}
    if any(m is None for m in hidden_maps):
        raise ModelError("some decoder layers start at zeros and others from the encoder; not "
                         "supported")
    acts = {m[0] for m in hidden_maps} | {m[0] for m in cell_maps if isinstance(m, tuple)}
    if len(acts) != 1:
        raise ModelError(f"the decoder's initial states use different activations {sorted(acts)}")
    act = acts.pop()
    top = len(enc.layers) - 1
    used = [m[3] for m in hidden_maps] + [m[3] for m in cell_maps if isinstance(m, tuple)]
    is_mean = ["mean" == k for k in used]
    if any(is_mean):
        if not all(is_mean) or any(m == "copy" for m in cell_maps):
            raise ModelError("the decoder's initial states mix the mean of the memory with "
                             "other sources")
        tensors = {}
        for layer, m in enumerate(hidden_maps):
            tensors[f"bridge.layers.{layer}.hidden.weight"] = m[1]
            if np.any(m[2]):
                tensors[f"bridge.layers.{layer}.hidden.bias"] = m[2]
        lstm_cell = "zeros"
        if any(isinstance(m, tuple) for m in cell_maps):
            if not all(isinstance(m, tuple) for m in cell_maps):
                raise ModelError("decoder layers start their cell states differently")
            lstm_cell = "bridged"
            for layer, m in enumerate(cell_maps):
                tensors[f"bridge.layers.{layer}.cell.weight"] = m[1]
                if np.any(m[2]):
                    tensors[f"bridge.layers.{layer}.cell.bias"] = m[2]
        config = {"type": "mean", "activation": act, "lstm_cell": lstm_cell}
        return config, {k: np.asarray(v, np.float32) for k, v in tensors.items()}
    if all(k == l for k, l in zip([m[3] for m in hidden_maps], range(L))) and \
            all(m[3] == l for l, m in enumerate(cell_maps) if isinstance(m, tuple)):
        source = "matching_layer"
    elif all(k == top for k in used):
        source = "top_layer"
    else:
        raise ModelError("the decoder's initial states read encoder layers "
                         f"{used}; supported: layer l for decoder layer l, or the top layer "
                         "for all")
    if source == "matching_layer" and len(enc.layers) != L:
        source = "top_layer" if all(k == top for k in used) else None
        if source is None:
            raise ModelError("the bridge reads matching encoder layers but the encoder and "
                             "decoder have different numbers of layers")

    H = enc.top.hidden
    if enc.top.directions == 1:
        identity = np.eye(H)
    elif enc.merge == "sum":
        identity = np.hstack([np.eye(H), np.eye(H)])
    else:
        identity = np.eye(2 * H)

    def is_identity(m):
        return act == "identity" and m[1].shape == identity.shape and \
            np.allclose(m[1], identity) and not np.any(m[2])
    cell_modes = set()
    for m in cell_maps:
        cell_modes.add("zeros" if m is None else "copy_hidden" if m == "copy" else "bridged")
    if len(cell_modes) > 1:
        raise ModelError("decoder layers start their cell states differently "
                         f"({sorted(cell_modes)})")
    lstm_cell = cell_modes.pop() if cell_modes else "zeros"

    if all(is_identity(m) for m in hidden_maps) and (
            lstm_cell != "bridged" or all(is_identity(m) for m in cell_maps)):
        config = {"type": "last", "from": source, "lstm_cell": lstm_cell}
        return config, {}
    tensors = {}
    for layer, m in enumerate(hidden_maps):
        tensors[f"bridge.layers.{layer}.hidden.weight"] = m[1]
        if np.any(m[2]):
            tensors[f"bridge.layers.{layer}.hidden.bias"] = m[2]
    if lstm_cell == "bridged":
        for layer, m in enumerate(cell_maps):
            tensors[f"bridge.layers.{layer}.cell.weight"] = m[1]
            if np.any(m[2]):
                tensors[f"bridge.layers.{layer}.cell.bias"] = m[2]
    config = {"type": "dense", "from": source, "activation": act, "lstm_cell": lstm_cell}
    return config, {k: np.asarray(v, np.float32) for k, v in tensors.items()}
