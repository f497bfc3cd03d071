"""Decoder-step graph analysis: target embedding, cells and their layer order, the
attention (attention.py), the attentional / readout layer and the output layer.

Meanings used for atoms (Registry keys): ("emb",) the target embedding of the previous
token, ("input", name, row) a row of a per-step decoder input (a layer's previous hidden
or cell state, or the fed attentional vector), ("cell_h", i) / ("cell_c", i) the new
states of cell i, ("ctx",) the attention context.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import ModelError
from ..common.one_hot import identity_embedding
from .affine import Affine, AffineWalker, stack
from .attention import (analyze_scores, decide_merge, find_attention_softmax,
                             find_context)
from .cells import CANONICAL_GATES, Cell, find_cells, find_rnn_cells
from .encoder import EncoderInfo
from .graph import Graph, Registry, plain

EMB, CTX = ("emb",), ("ctx",)


@dataclass
class DecoderInfo:
    config: dict
    attention: dict | None
    tensors: dict
    layers: list                 # Cell per layer
    h_keys: list                 # per layer: ("input", name, row) of the previous hidden state
    c_keys: list                 # per layer (LSTM) or None
    feed_key: tuple | None
    logits: str                  # tensor of the logits (before any (log-)softmax)
    logits_kind: str             # "logits", "log_probs" or "probs"
    output: str                  # the graph output holding them
    attention_weights: str | None
    masks: list = field(default_factory=list)
    values: str | None = None    # the memory as the attention reads it
    token: str = ""


def _describe(g: Graph, atom: str) -> str:
    node = g.producer.get(atom)
    return node.describe() if node is not None else f"input '{plain(atom)}'"


def _key(g: Graph, reg: Registry, atom: str, where: str):
    keys = reg.resolve(atom)
    if keys is None or len(set(keys)) != 1:
        raise ModelError(f"{where}: reads {_describe(g, atom)}, which is not the embedding, "
                         "the context, a decoder state or another cell's output")
    return keys[0]


def _by_key(g, reg, aff: Affine, where: str) -> dict:
    out = {}
    for atom, m in aff.terms.items():
        k = _key(g, reg, atom, where)
        out[k] = out[k] + m if k in out else m
    return out


def _columns(terms: dict, inputs: list, rows: int, where: str) -> np.ndarray:
    extra = set(terms) - {k for k, _ in inputs}
    if extra:
        raise ModelError(f"{where}: reads {sorted(map(str, extra))}, which this layer cannot "
                         "read in the canonical architecture")
    return np.hstack([terms.get(k, np.zeros((rows, w))) for k, w in inputs]) if inputs \
        else np.zeros((rows, 0))


def _register_inputs(g: Graph, reg: Registry, names: list[str]):
    for name in names:
        v = g.canon(name)
        for r in range(v.shape[0]):
            reg.add(("input", name, r), {name}, v[r:r + 1])


def analyze_decoder(g: Graph, walker: AffineWalker, reg: Registry, enc: EncoderInfo,
                    token_input: str, step_inputs: list[str], one_hot: bool = False
                    ) -> DecoderInfo:
    dec_nodes = [n for n in g.nodes if n.graph == "decoder"]
    if one_hot:   # the one-hot token is its own embedding (see encoder._source_embedding)
        table, emb_out = identity_embedding(g.width(token_input)), {token_input}
    else:
        gathers = [n for n in dec_nodes if n.op == "Gather" and g.is_const(n.inputs[0])
                   and g.value(n.inputs[0]).ndim == 2 and n.attrs.get("axis", 0) == 0
                   and g.depends_on(n.inputs[1], {token_input})]
        tables = {n.inputs[0] for n in gathers}
        if len(tables) != 1:
            raise ModelError("decoder graph: expected one target embedding lookup (Gather "
                             "from a [vocabulary, embedding] initializer) of the token input "
                             f"'{plain(token_input)}', found {len(tables)}")
        table = g.value(next(iter(tables))).astype(np.float32)
        emb_out = {n.outputs[0] for n in gathers}
    reg.add(EMB, emb_out, g.canon(next(iter(emb_out))))
    _register_inputs(g, reg, step_inputs)

    cells = find_cells(g, walker)
    if not cells:
        def is_state(a):
            keys = reg.resolve(a)
            return keys is not None and keys[0][0] == "input"
        cells = find_rnn_cells(g, walker, is_state)
    if not cells:
        raise ModelError("decoder graph: no recurrent cell found (supported: LSTM/GRU/RNN "
                         "operators, or LSTM/GRU/RNN cells unrolled into MatMul/Gemm, Sigmoid, "
                         "Tanh, Mul and Add as nn.LSTMCell/nn.GRUCell/nn.RNNCell export)")
    for i, cell in enumerate(cells):
        reg.add(("cell_h", i), cell.h_new, g.canon(sorted(cell.h_new)[-1]))
        if cell.c_new:
            reg.add(("cell_c", i), cell.c_new, g.canon(sorted(cell.c_new)[0]))

    softmax = find_attention_softmax(g)
    att = None
    if softmax is not None:
        att = find_context(g, softmax, enc.source_input)
        decide_merge(g, walker, reg, enc, att)
    else:
        enc.merge = "concat"

    # ---- cells: which atom is what ---------------------------------------------------
    resolved = []
    for i, cell in enumerate(cells):
        resolved.append(_resolve_cell(g, reg, cell))
    state_keys = {r["h"] for r in resolved} | {r["c"] for r in resolved if r["c"]}
    # layer order: layer 0 reads the embedding, layer l reads cell l-1
    order, current = [], None
    firsts = [i for i, r in enumerate(resolved) if EMB in r["x"]]
    if len(firsts) != 1:
        raise ModelError("decoder graph: expected exactly one cell reading the target "
                         f"embedding, found {len(firsts)}")
    current = firsts[0]
    while current is not None:
        order.append(current)
        nxt = [i for i, r in enumerate(resolved) if ("cell_h", current) in r["x"]]
        if len(nxt) > 1:
            raise ModelError("decoder graph: several cells read the same layer's output")
        current = nxt[0] if nxt else None
        if current in order:
            raise ModelError("decoder graph: the cells form a cycle")
    if len(order) != len(cells):
        stray = [cells[i].where for i in range(len(cells)) if i not in order]
        raise ModelError(f"decoder graph: cell(s) {stray} are not part of the layer stack "
                         "(embedding -> layer 0 -> layer 1 -> ...)")
    layers = [cells[i] for i in order]
    top = ("cell_h", order[-1])
    kinds = {(c.kind, c.hidden, c.reset_after if c.kind == "gru" else True) for c in layers}
    if len(kinds) != 1:
        raise ModelError("decoder graph: all decoder layers must have the same cell type and "
                         "hidden size")
    cell_kind, hidden, reset_after = next(iter(kinds))

    first = resolved[order[0]]
    feed_keys = [k for k in first["x"] if k[0] == "input" and k not in state_keys]
    for li, idx in enumerate(order[1:], start=1):
        extra = set(resolved[idx]["x"]) - {("cell_h", order[li - 1])}
        if extra:
            raise ModelError(f"{cells[idx].where}: decoder layer {li} reads "
                             f"{sorted(map(str, extra))}; layers above the first read only the "
                             "layer below (no residual, context or embedding inputs)")
    unknown = set(first["x"]) - {EMB, CTX} - set(feed_keys)
    if unknown:
        raise ModelError(f"{cells[order[0]].where}: the first decoder layer reads "
                         f"{sorted(map(str, unknown))}")
    if len(feed_keys) > 1:
        raise ModelError(f"{cells[order[0]].where}: the first decoder layer reads several "
                         f"decoder inputs besides its state: {feed_keys}")
    feed_key = feed_keys[0] if feed_keys else None

    if att is None:
        dec_type = "none"
        if CTX in first["x"] or feed_key:
            raise ModelError("decoder graph: no attention softmax found, but the first layer "
                             "reads more than the embedding")
    elif CTX in first["x"]:
        dec_type = "bahdanau"
        if feed_key:
            raise ModelError(f"{cells[order[0]].where}: reads the context and another input "
                             f"({plain(feed_key[1])}); input feeding needs Luong attention")
    else:
        dec_type = "luong"

    tensors = {"decoder.embedding.weight": table}
    E = g.width(next(iter(emb_out)))
    D_m = enc.cat_width if enc.merge == "concat" else enc.top.hidden

    # ---- attention scores ---------------------------------------------------------------
    attention_config = None
    if att is not None:
        scores = analyze_scores(g, walker, reg, enc, att, softmax,
                                set(step_inputs) | {token_input})
        qkey = scores["query_key"]
        top_h_prev = resolved[order[-1]]["h"]
        if dec_type == "luong" and qkey != top:
            raise ModelError(f"{softmax.describe()}: Luong-style attention (the first layer "
                             "does not read the context) must be queried with the new top-layer"
                             f" state; the query here is {qkey}")
        if dec_type == "bahdanau" and qkey != top_h_prev:
            raise ModelError(f"{softmax.describe()}: Bahdanau-style attention (the first layer "
                             "reads the context) must be queried with the previous top-layer "
                             f"state; the query here is {qkey}")
        attention_config = scores["attention"]
        tensors.update({k: np.asarray(v, np.float32) for k, v in scores["tensors"].items()})

    # ---- output layer -------------------------------------------------------------------
    out = _output_layer(g, walker, reg, dec_type, top, E, D_m, hidden, step_inputs)
    D_a = out.get("attentional_size")
    if feed_key is not None:
        if dec_type != "luong" or D_a is None:
            raise ModelError(f"decoder input '{plain(feed_key[1])}' is fed to the first layer "
                             "with the embedding (input feeding), but the logits are not "
                             "computed from an attentional vector tanh(W [context; state])")
        if not _output_has(g, g.canon(out["attentional_tensor"])):
            raise ModelError(f"decoder input '{plain(feed_key[1])}' looks like input feeding, "
                             "but no decoder output is the attentional vector to feed back")
        if g.width(feed_key[1]) != D_a:
            raise ModelError(f"decoder input '{plain(feed_key[1])}' has width "
                             f"{g.width(feed_key[1])}, the attentional vector {D_a}")
    tensors.update({k: np.asarray(v, np.float32) for k, v in out["tensors"].items()})

    # ---- cell weights in the canonical layout -------------------------------------------
    for li, idx in enumerate(order):
        if li == 0:
            inputs = [(EMB, E)]
            if dec_type == "bahdanau":
                inputs.append((CTX, D_m))
            if feed_key is not None:
                inputs.append((feed_key, D_a))
        else:
            inputs = [(("cell_h", order[li - 1]), hidden)]
        w_ih, w_hh, b_ih, b_hh = _cell_weights(cells[idx], resolved[idx], inputs)
        p = f"decoder.layers.{li}"
        tensors[f"{p}.weight_ih"] = w_ih
        tensors[f"{p}.weight_hh"] = w_hh
        tensors[f"{p}.bias_ih"] = b_ih
        if np.any(b_hh):
            tensors[f"{p}.bias_hh"] = b_hh
        # the graph must hand the new state back (otherwise it cannot be decoded step by step)
        if not _output_has(g, g.canon(sorted(layers[li].h_new)[-1])):
            raise ModelError(f"decoder graph: no output holds the new hidden state of layer {li}"
                             f" ({layers[li].where}); a decoder step must return its new states")

    config = {"type": dec_type, "embedding_size": E, "cell": cell_kind, "hidden_size": hidden,
              "num_layers": len(layers), "gru_reset_after": bool(reset_after)}
    config.update(out["config"])
    if feed_key is not None:
        config["input_feeding"] = True
    return DecoderInfo(config, attention_config, tensors, layers,
                       [resolved[i]["h"] for i in order], [resolved[i]["c"] for i in order],
                       feed_key, out["logits"], out["kind"], out["output"],
                       att.weights if att else None, att.masks if att else [],
                       att.values if att else None, token_input)


def _output_has(g: Graph, value: np.ndarray) -> bool:
    for o in g.outputs["decoder"]:
        v = g.canon(o)
        if v.shape[1:] != value.shape[1:]:
            continue
        if any(np.array_equal(v[r:r + 1], value) for r in range(v.shape[0])):
            return True
    return False


def _resolve_cell(g: Graph, reg: Registry, cell: Cell) -> dict:
    """Keys of the previous state(s) and the layer inputs, and each gate's matrices by key."""
    where = cell.where
    gates = dict(cell.gates)
    if cell.n_input is not None:
        gates["n"] = cell.n_input
    by_gate = {gate: _by_key(g, reg, aff, where) for gate, aff in gates.items()}
    c_key = None
    if cell.kind == "lstm":
        c_key = _key(g, reg, cell.c_prev, where) if cell.c_prev else None
        if c_key is None or c_key[0] != "input":
            raise ModelError(f"{where}: the LSTM's previous cell state must be a decoder input")
    if cell.h_prev is not None:
        h_key = _key(g, reg, cell.h_prev, where)
    else:
        candidates = {k for terms in by_gate.values() for k in terms
                      if k[0] == "input" and k != c_key}
        if len(candidates) > 1:
            # the previous state enters through its own MatMul; the layer input through another
            shared = set()
            for aff in gates.values():
                entries = {}
                for atom, e in aff.entries.items():
                    entries.setdefault(_key(g, reg, atom, where), set()).update(e)
                x_entries = set().union(*(e for k, e in entries.items() if k[0] != "input"))
                shared |= {k for k, e in entries.items() if k[0] == "input" and e & x_entries}
            candidates -= shared
        if len(candidates) != 1:
            raise ModelError(f"{where}: cannot tell which decoder input is this cell's previous "
                             "hidden state")
        h_key = next(iter(candidates))
    if h_key[0] != "input":
        raise ModelError(f"{where}: the previous hidden state must be a decoder input, "
                         f"not {h_key}")
    x = set()
    for gate, terms in by_gate.items():
        x |= {k for k in terms if k != h_key}
    if cell.kind == "gru" and h_key in by_gate.get("n", {}):
        raise ModelError(f"{where}: the GRU candidate reads the previous state outside the reset "
                         "product")
    return {"h": h_key, "c": c_key, "x": x, "terms": by_gate}


def _cell_weights(cell: Cell, res: dict, inputs: list):
    H = cell.hidden
    w_ih, w_hh, b_ih, b_hh = [], [], [], []
    gates = dict(cell.gates)
    if cell.n_input is not None:
        gates["n"] = cell.n_input
    for gate in CANONICAL_GATES[cell.kind]:
        terms = dict(res["terms"][gate])
        h_part = terms.pop(res["h"], None)
        w_ih.append(_columns(terms, inputs, H, cell.where))
        b_ih.append(gates[gate].bias)
        if cell.kind == "gru" and gate == "n":
            w_hh.append(cell.w_hn)
            b_hh.append(cell.b_hn)
        else:
            w_hh.append(h_part if h_part is not None else np.zeros((H, H)))
            b_hh.append(np.zeros(H))
    return (np.vstack(w_ih).astype(np.float32), np.vstack(w_hh).astype(np.float32),
            np.concatenate(b_ih).astype(np.float32), np.concatenate(b_hh).astype(np.float32))


# ---- output layer ---------------------------------------------------------------------
def _find_logits(g: Graph, vocab: int):
    best = None
    for o in g.outputs["decoder"]:
        v = g.value(o)
        if v.ndim == 0 or v.shape[-1] != vocab or g.has_source_axis(o):
            continue
        name, kind = o, "logits"
        node = g.producer.get(g.strip(o))
        if node is not None and node.op == "LogSoftmax":
            name, kind = node.inputs[0], "log_probs"
        elif node is not None and node.op == "Softmax":
            name, kind = node.inputs[0], "probs"
        elif node is not None and node.op == "Log":
            inner = g.producer.get(g.strip(node.inputs[0]))
            if inner is not None and inner.op == "Softmax":
                name, kind = inner.inputs[0], "log_probs"
        if node is not None and node.op in ("LogSoftmax", "Softmax"):
            axis = node.attrs.get("axis", -1)
            if axis not in (-1, v.ndim - 1):
                continue
        if kind != "logits":
            return name, kind, o
        best = best or (name, kind, o)
    if best is None:
        raise ModelError(f"decoder graph: no output has the target vocabulary's size {vocab} "
                         "as its last dimension (the logits or log-probabilities)")
    return best


def _maxout(g: Graph, walker: AffineWalker, atom: str):
    """(Affine of the pre-maxout vector with pairs adjacent, width) or None."""
    name = g.strip(atom, ops=("Identity", "Squeeze", "Reshape", "Unsqueeze"))
    node = g.producer.get(name)
    if node is None:
        return None
    if node.op == "Max" and len(node.inputs) == 2:
        a, b = walker.of(node.inputs[0]), walker.of(node.inputs[1])
        if a.width != b.width:
            return None
        half = a.width
        order = np.ravel(np.column_stack([np.arange(half), half + np.arange(half)]))
        return stack([a, b]).rows(order)
    if node.op == "ReduceMax":
        x = node.inputs[0]
        xv = g.value(x)
        axis = g.single_reduce_axis(node)
        if axis is None:
            return None
        reshape = g.producer.get(x)
        if reshape is None or reshape.op != "Reshape":
            return None
        pre = reshape.inputs[0]
        R = g.width(pre)
        if axis == xv.ndim - 1 and xv.shape[-1] == 2 and xv.shape[-2] * 2 == R:
            return walker.of(pre)
        if axis == xv.ndim - 2 and xv.shape[-2] == 2 and xv.shape[-1] * 2 == R:
            half = R // 2
            order = np.ravel(np.column_stack([np.arange(half), half + np.arange(half)]))
            return walker.of(pre).rows(order)
    return None


def _output_layer(g, walker, reg, dec_type, top, E, D_m, H, step_inputs) -> dict:
    vocab = _vocab_size(g, reg)
    logits, kind, output = _find_logits(g, vocab)
    where = f"decoder output '{plain(output)}'"
    aff = walker.of(logits)
    terms, nonlinear = {}, []
    for atom, m in aff.terms.items():
        keys = reg.resolve(atom)
        if keys is not None and len(set(keys)) == 1:
            terms[keys[0]] = terms[keys[0]] + m if keys[0] in terms else m
        else:
            nonlinear.append((atom, m))
    result = {"logits": logits, "kind": kind, "output": output, "tensors": {}, "config": {}}
    previous = [k for k in terms if k[0] == "input"]
    if previous:
        raise ModelError(f"{where}: the output layer reads the decoder input "
                         f"'{plain(previous[0][1])}' (a previous state); supported readouts "
                         "read the new state, the context and the embedding")

    def cols(tm: dict, inputs: list, rows: int, what: str):
        return _columns(tm, inputs, rows, f"{where} ({what})")

    if len(nonlinear) > 1 or (nonlinear and terms):
        raise ModelError(f"{where}: the logits combine a nonlinear layer with other inputs; "
                         "not a supported readout")
    if dec_type == "none":
        if nonlinear:
            raise ModelError(f"{where}: a decoder without attention must compute the logits "
                             "directly from the top state")
        result["tensors"]["decoder.output.weight"] = cols(terms, [(top, H)], vocab, "output")
        result["tensors"]["decoder.output.bias"] = aff.bias
        return result
    if nonlinear:
        atom, m = nonlinear[0]
        node = g.producer.get(atom)
        pre, act = None, None
        if node is not None and node.op == "Tanh":
            pre, act = walker.of(node.inputs[0]), "tanh"
        else:
            mx = _maxout(g, walker, atom)
            if mx is not None:
                pre, act = mx, "maxout"
        if pre is None:
            raise ModelError(f"{where}: the logits are computed from {_describe(g, atom)}; "
                             "supported: Linear over tanh(Linear(...)) (Luong attentional layer"
                             " or tanh readout), a maxout readout, or a Linear over the state, "
                             "context and embedding")
        pterms = _by_key(g, reg, pre, f"{where} (readout)")
        if dec_type == "luong":
            if act != "tanh":
                raise ModelError(f"{where}: a Luong decoder's attentional layer must be tanh")
            D_a = pre.width
            result["tensors"]["decoder.attentional.weight"] = cols(
                pterms, [(CTX, D_m), (top, H)], D_a, "attentional layer")
            result["tensors"]["decoder.attentional.bias"] = pre.bias
            result["tensors"]["decoder.output.weight"] = m
            result["tensors"]["decoder.output.bias"] = aff.bias
            result["attentional_size"] = D_a
            result["attentional_tensor"] = atom
            result["config"] = {"attentional_layer": True, "attentional_size": D_a}
            return result
        inputs = [(k, w) for k, w in ((top, H), (CTX, D_m), (EMB, E)) if k in pterms]
        names = {top: "state", CTX: "context", EMB: "embedding"}
        R = pre.width
        result["tensors"]["decoder.readout.weight"] = cols(pterms, inputs, R, "readout")
        result["tensors"]["decoder.readout.bias"] = pre.bias
        result["tensors"]["decoder.output.weight"] = m
        result["tensors"]["decoder.output.bias"] = aff.bias
        result["config"] = {"readout": act, "readout_size": R,
                            "readout_inputs": [names[k] for k, _ in inputs]}
        return result
    if dec_type == "luong":
        result["tensors"]["decoder.output.weight"] = cols(terms, [(CTX, D_m), (top, H)], vocab,
                                                         "output")
        result["tensors"]["decoder.output.bias"] = aff.bias
        result["config"] = {"attentional_layer": False}
        return result
    inputs = [(k, w) for k, w in ((top, H), (CTX, D_m), (EMB, E)) if k in terms]
    names = {top: "state", CTX: "context", EMB: "embedding"}
    if not inputs:
        raise ModelError(f"{where}: the logits do not depend on the decoder state")
    result["tensors"]["decoder.output.weight"] = cols(terms, inputs, vocab, "output")
    result["tensors"]["decoder.output.bias"] = aff.bias
    result["config"] = {"readout": "none", "readout_inputs": [names[k] for k, _ in inputs]}
    return result


def _vocab_size(g: Graph, reg: Registry) -> int:
    for key, origins, value in reg.entries:
        if key == EMB:
            name = next(iter(origins))
            node = g.producer.get(name)
            if node is None:   # a one-hot token input: V is its width
                return g.width(name)
            return int(g.value(node.inputs[0]).shape[0])
    raise ModelError("decoder graph: no target embedding")
