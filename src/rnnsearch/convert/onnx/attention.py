"""The attention subgraph of a decoder step: the softmax over source positions, the
weighted sum of the memory (context), padding masks, and the score function.

Scores recognised (s: a constant scale from Mul/Div, masks skipped):
  dot / general:  MatMul(keys [B,S,K], q [B,K,1]), MatMul(q [B,1,K], keysᵀ [B,K,S]) or
                  ReduceSum(Mul(q, keys), -1), where q = W_q·query + b_q (or the query) and
                  keys = W_k·memory + b_k (or the memory): e = s·q·k.
  additive:       v·tanh(W_q query + W_k memory + b) as MatMul(t, v), Linear(A→1),
                  ReduceSum(Mul(t, v)) or ReduceSum(t) (v = 1), including Luong's "concat"
                  (a Linear over [query repeated; memory]).
Context: MatMul(a [B,1,S], memory [B,S,D]), MatMul(memoryᵀ, a [B,S,1]) or
ReduceSum(Mul(a [B,S,1], memory), S).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import ModelError
from .affine import AffineWalker
from .encoder import EncoderInfo, memory_matrix
from .graph import Graph, Node, Registry, plain

_THROUGH = ("Identity", "Cast", "Dropout", "Squeeze", "Unsqueeze", "Reshape", "Transpose",
            "Flatten")


@dataclass
class Attention:
    weights: str                 # the softmax output (B, S)
    contexts: list               # tensors holding the context
    values: str                  # the memory as read by the weighted sum
    scores_node: Node | None = None
    masks: list = field(default_factory=list)  # masking nodes skipped before the softmax
    scale: float = 1.0


def find_attention_softmax(g: Graph) -> Node | None:
    found = []
    for node in g.nodes:
        if node.graph != "decoder" or node.op != "Softmax":
            continue
        v = g.value(node.outputs[0])
        S = g.probe.source
        if S not in v.shape:
            continue
        axis = node.attrs.get("axis", -1)
        axis = axis + v.ndim if axis < 0 else axis
        # opset < 13 softmaxes over all axes from `axis` on: accept [B, 1, S] with axis 1
        if axis < v.ndim and S in v.shape[axis:] and int(np.prod(v.shape[axis:])) == S:
            found.append(node)
    if len(found) > 1:
        raise ModelError("decoder graph: several softmaxes over the source positions ("
                         + ", ".join(n.describe() for n in found) + "); one global attention "
                         "is supported (no multi-head or multiple attention)")
    return found[0] if found else None


def _squeeze_last(v: np.ndarray, width: int) -> np.ndarray:
    return v[..., 0] if v.shape[-1] == 1 and width != 1 else v


def find_context(g: Graph, softmax: Node, source_input: str) -> Attention:
    a = softmax.outputs[0]
    found = []
    frontier, seen = [a], set()
    while frontier:
        t = frontier.pop()
        if t in seen:
            continue
        seen.add(t)
        for node in g.consumers.get(t, []):
            if node.op in _THROUGH:
                frontier.append(node.outputs[0])
                continue
            others = [i for i in node.inputs if i != t]
            if node.op not in ("MatMul", "Mul") or len(others) != 1 or \
                    not g.depends_on(others[0], {source_input}):
                continue
            other = others[0]
            if node.op == "MatMul":
                if node.inputs[0] == t:
                    found.append((node.outputs[0], other))
                else:  # MatMul(memoryᵀ, a)
                    tr = g.producer.get(other)
                    if tr is None or tr.op != "Transpose":
                        raise ModelError(f"{node.describe()}: the context is computed from a "
                                         "transposed memory that is not a Transpose")
                    found.append((node.outputs[0], tr.inputs[0]))
            else:
                for red in g.consumers.get(node.outputs[0], []):
                    if red.op == "ReduceSum":
                        found.append((red.outputs[0], other))
    if not found:
        raise ModelError(f"{softmax.describe()}: the attention weights are not used for a "
                         "weighted sum of the encoder outputs (MatMul, or Mul + ReduceSum)")
    values = {v for _, v in found}
    return Attention(a, [c for c, _ in found], sorted(values)[0])


def decide_merge(g: Graph, walker: AffineWalker, reg: Registry, enc: EncoderInfo,
                 att: Attention) -> None:
    """The memory is what the attention sums: the top layer's outputs, concatenated or
    summed over the directions. Sets enc.merge and registers the context."""
    aff = walker.of(att.values)
    top = enc.top
    cat = np.zeros((aff.width, enc.cat_width))
    for atom, m in aff.terms.items():
        keys = reg.resolve(atom)
        if keys is None or len(set(keys)) != 1 or keys[0][0] != "Y" or \
                keys[0][1] != len(enc.layers) - 1:
            raise ModelError(f"decoder: the attention's weighted sum reads "
                             f"{_describe_atom(g, atom)}, which is not the top encoder "
                             "layer's output")
        from .encoder import relative_to_cat
        cat += relative_to_cat(m, keys[0], top.hidden, top.directions)
    if np.any(np.abs(aff.bias) > 1e-6):
        raise ModelError("decoder: the attention's weighted sum reads a projection of the "
                         "encoder outputs (with a bias); the values must be the encoder outputs")
    H = top.hidden
    if top.directions == 1 and cat.shape == (H, H) and np.allclose(cat, np.eye(H)):
        enc.merge = "concat"
    elif top.directions == 2 and cat.shape == (2 * H, 2 * H) and np.allclose(cat, np.eye(2 * H)):
        enc.merge = "concat"
    elif top.directions == 2 and cat.shape == (H, 2 * H) and \
            np.allclose(cat, np.hstack([np.eye(H), np.eye(H)])):
        enc.merge = "sum"
    else:
        raise ModelError("decoder: the attention's weighted sum reads a projection of the "
                         "encoder outputs; the values must be the encoder outputs (both "
                         "directions concatenated or summed)")
    # check the contraction numerically: context = sum_j a_j memory_j
    a = g.canon(att.weights, feature=False)[0, :, :, 0]      # [B, S]
    mem = g.canon(att.values)[0]                               # [B, S, D]
    expected = np.einsum("bs,bsd->bd", a.astype(np.float64), mem.astype(np.float64))
    for c in att.contexts:
        v = _squeeze_last(g.value(c), mem.shape[-1])
        got = g.canon(v)[0, :, 0, :]
        if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-4, atol=1e-5):
            raise ModelError(f"{g.producer[c].describe()}: does not compute the weighted sum "
                             "of the memory over the source positions")
        reg.add(("ctx",), {c}, g.canon(v))


def _describe_atom(g: Graph, atom: str) -> str:
    node = g.producer.get(atom)
    return node.describe() if node is not None else f"input '{plain(atom)}'"


def _state_free(g: Graph, name: str, step_inputs: set[str]) -> bool:
    return not g.depends_on(name, step_inputs)


def strip_scores(g: Graph, att: Attention, softmax: Node, step_inputs: set[str]) -> str:
    """Skip masking (Where / Add of something that depends on no decoder state), constant
    offsets and scales; returns the score tensor."""
    e = softmax.inputs[0]
    while True:
        node = g.producer.get(e)
        if node is None:
            return e
        if node.op in _THROUGH:
            e = node.inputs[0]
            continue
        if node.op == "Where":
            cond, x, y = node.inputs
            if g.is_const(y) and not g.is_const(x) and _state_free(g, cond, step_inputs):
                att.masks.append(node)
                e = x
                continue
            if g.is_const(x) and not g.is_const(y) and _state_free(g, cond, step_inputs):
                att.masks.append(node)
                e = y
                continue
            return e
        if node.op in ("Add", "Sub"):
            x, y = node.inputs
            if _state_free(g, y, step_inputs) and not _state_free(g, x, step_inputs):
                if not g.is_const(y):
                    att.masks.append(node)
                e = x
                continue
            if node.op == "Add" and _state_free(g, x, step_inputs) and \
                    not _state_free(g, y, step_inputs):
                if not g.is_const(x):
                    att.masks.append(node)
                e = y
                continue
            return e
        if node.op in ("Mul", "Div"):
            x, y = node.inputs
            if node.op == "Mul" and g.is_const(x):
                x, y = y, x
            if g.is_const(y) and np.asarray(g.value(y)).size == 1:
                s = float(np.asarray(g.value(y)).reshape(-1)[0])
                att.scale *= (1.0 / s) if node.op == "Div" else s
                e = x
                continue
            return e
        return e


def _query_side(g: Graph, q: str, width: int) -> str:
    while g.width(q) != width:
        node = g.producer.get(q)
        if node is None or node.op not in _THROUGH:
            raise ModelError(f"decoder: cannot follow the attention query back from "
                             f"'{plain(q)}'")
        q = node.inputs[0]
    return q


def _memory_side(walker, reg, enc, name: str, where: str):
    aff = walker.of(name)
    total = None
    for atom, m in aff.terms.items():
        keys = reg.resolve(atom)
        if keys is None or len(set(keys)) != 1:
            raise ModelError(f"{where}: the attention keys read {_describe_atom(walker.g, atom)},"
                             " which is not the encoder output")
        mm = memory_matrix(enc, m, keys[0], where)
        total = mm if total is None else total + mm
    if total is None:
        raise ModelError(f"{where}: the attention keys do not depend on the encoder output")
    return total, aff.bias


def _query(walker, reg, name: str, where: str):
    aff = walker.of(name)
    mem = [a for a in aff.terms if walker.g.depends_on(a, set(walker.g.inputs)
                                                       & _encoder_inputs(walker.g))]
    if len(aff.terms) != 1 or mem:
        raise ModelError(f"{where}: the attention query must be one decoder state (or a "
                         f"projection of it); it reads {len(aff.terms)} tensors")
    atom = next(iter(aff.terms))
    keys = reg.resolve(atom)
    if keys is None or len(set(keys)) != 1:
        raise ModelError(f"{where}: the attention query is {_describe_atom(walker.g, atom)}, "
                         "which is neither the new nor the previous decoder state")
    return keys[0], aff.terms[atom], aff.bias


def _encoder_inputs(g: Graph) -> set[str]:
    return {n for n, tag in g.inputs.items() if tag == "encoder"}


def analyze_scores(g: Graph, walker: AffineWalker, reg: Registry, enc: EncoderInfo,
                   att: Attention, softmax: Node, step_inputs: set[str]) -> dict:
    """Returns {"query_key", "attention" (config), "tensors"}."""
    src = _encoder_inputs(g)
    e = strip_scores(g, att, softmax, step_inputs)
    node = g.producer.get(e)
    where = node.describe() if node is not None else f"'{plain(e)}'"
    s = att.scale
    core = None
    if node is not None and node.op == "MatMul" and not any(g.is_const(i) for i in node.inputs):
        a, b = node.inputs
        ma, mb = g.depends_on(a, src), g.depends_on(b, src)
        if ma == mb:
            raise ModelError(f"{where}: attention scores must multiply a query (decoder side) "
                             "with keys (encoder side)")
        if ma:
            kside, qside = a, b
        else:
            tr = g.producer.get(b)
            if tr is None or tr.op != "Transpose":
                raise ModelError(f"{where}: the keys are transposed by an operator other than "
                                 "Transpose")
            kside, qside = tr.inputs[0], a
        core = (kside, _query_side(g, qside, g.width(kside)))
    elif node is not None and node.op == "ReduceSum":
        mul = g.producer.get(node.inputs[0])
        if mul is not None and mul.op == "Mul" and not any(g.is_const(i) for i in mul.inputs):
            a, b = mul.inputs
            if g.depends_on(a, src) != g.depends_on(b, src):
                kside, qside = (a, b) if g.depends_on(a, src) else (b, a)
                if g.width(kside) == g.width(qside):
                    core = (kside, qside)
    if core is not None:
        kside, qside = core
        wk, bk = _memory_side(walker, reg, enc, kside, where)
        qkey, wq, bq = _query(walker, reg, qside, where)
        if np.any(np.abs(bq) > 1e-6 * max(1.0, np.abs(wq).max())):
            raise ModelError(f"{where}: the query projection has a bias, which makes the "
                             "scores depend on the memory through it; not expressible")
        H = wq.shape[1]
        ident_q = wq.shape[0] == H and np.allclose(wq, np.eye(H))
        ident_k = wk.shape[0] == wk.shape[1] and np.allclose(wk, np.eye(wk.shape[1])) and \
            not np.any(bk)
        if ident_q and ident_k:
            if np.isclose(s, 1.0, rtol=1e-6):
                return {"query_key": qkey, "attention": {"score": "dot"}, "tensors": {}}
            if np.isclose(s, 1.0 / np.sqrt(H), rtol=1e-6):
                return {"query_key": qkey, "attention": {"score": "scaled_dot"}, "tensors": {}}
            return {"query_key": qkey, "attention": {"score": "dot"},
                    "tensors": {"attention.scale": np.array([s], np.float32)}}
        weight = s * wq.T @ wk
        bias = s * wq.T @ bk
        tensors = {"attention.key.weight": weight}
        if np.any(bias):
            tensors["attention.key.bias"] = bias
        return {"query_key": qkey, "attention": {"score": "general"}, "tensors": tensors}
    # additive: scores = v · tanh(P)
    lin = _score_linear(g, walker, e)
    atoms = list(lin.terms) if lin is not None else []
    tanh = g.producer.get(atoms[0]) if len(atoms) == 1 else None
    if tanh is None or tanh.op != "Tanh":
        raise ModelError(f"{where}: attention scores of this form are not supported (supported:"
                         " dot, scaled dot, general — a MatMul of query and keys — and "
                         "additive v·tanh(W_q q + W_k h))")
    v = lin.terms[atoms[0]][0] * s
    pre = walker.of(tanh.inputs[0])
    q_atoms = [a for a in pre.terms if not g.depends_on(a, src)]
    if len(q_atoms) != 1:
        raise ModelError(f"{tanh.describe()}: additive attention must read one decoder state "
                         f"and the encoder outputs; it reads {len(q_atoms)} decoder tensors")
    keys = reg.resolve(q_atoms[0])
    if keys is None or len(set(keys)) != 1:
        raise ModelError(f"{tanh.describe()}: the attention query is "
                         f"{_describe_atom(g, q_atoms[0])}, which is not a decoder state")
    wq = pre.terms[q_atoms[0]]
    wk = None
    for atom, m in pre.terms.items():
        if atom in q_atoms:
            continue
        k = reg.resolve(atom)
        if k is None or len(set(k)) != 1:
            raise ModelError(f"{tanh.describe()}: the attention keys read "
                             f"{_describe_atom(g, atom)}, which is not the encoder output")
        mm = memory_matrix(enc, m, k[0], tanh.describe())
        wk = mm if wk is None else wk + mm
    if wk is None:
        raise ModelError(f"{tanh.describe()}: the additive attention does not read the memory")
    A = pre.width
    qp = not (wq.shape[1] == A and np.allclose(wq, np.eye(A)))
    kp = not (wk.shape[1] == A and np.allclose(wk, np.eye(A)))
    tensors = {}
    bias = pre.bias
    if qp:
        tensors["attention.query.weight"] = wq
        if np.any(bias):
            tensors["attention.query.bias"] = bias
    if kp:
        tensors["attention.key.weight"] = wk
        if np.any(bias) and not qp:
            tensors["attention.key.bias"] = bias
    if not qp and not kp and np.any(bias):
        raise ModelError(f"{tanh.describe()}: additive attention without projections cannot "
                         "have a bias")
    if not np.allclose(v, 1.0):
        tensors["attention.v"] = v
    config = {"score": "additive", "size": A, "query_projection": bool(qp),
              "key_projection": bool(kp)}
    return {"query_key": keys[0], "attention": config, "tensors": tensors}


def _score_linear(g: Graph, walker: AffineWalker, e: str):
    node = g.producer.get(e)
    if node is not None and node.op == "MatMul" and g.is_const(node.inputs[1]) and \
            np.asarray(g.value(node.inputs[1])).ndim == 1:
        v = np.asarray(g.value(node.inputs[1]), dtype=np.float64)
        return walker.of(node.inputs[0]).apply(v[None, :], e)
    if node is not None and node.op == "ReduceSum":
        x = node.inputs[0]
        rank = g.value(x).ndim
        axes = node.attrs.get("axes")
        if axes is None and len(node.inputs) > 1 and node.inputs[1]:
            axes = [int(a) for a in np.asarray(g.value(node.inputs[1])).reshape(-1)]
        if axes is not None and [a + rank if a < 0 else a for a in axes] == [rank - 1]:
            return walker.of(x).apply(np.ones((1, g.width(x))), e)
        return None
    if g.width(e) == 1:
        return walker.of(e)
    return None
