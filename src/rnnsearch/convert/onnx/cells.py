"""Recurrent cells in a decoder-step graph: ONNX LSTM/GRU/RNN operators run for one step,
and the same cells unrolled into elementwise operators (what nn.LSTMCell, nn.GRUCell and
nn.RNNCell, or hand-written cells, export to).

A cell is described by its gate pre-activations as affine forms (affine.py) over the
layer input(s) and the previous hidden state, so the gate order of a fused weight, the
split into separate Linear layers and the bias placement do not matter: each gate is
found by its place in the cell's formula.
  LSTM:  h' = σ(o) ⊙ tanh(σ(f) ⊙ c + σ(i) ⊙ tanh(g))
  GRU:   h' = (1 − z) ⊙ n + z ⊙ h   (or z ⊙ n + (1 − z) ⊙ h: z is then negated),
         n = tanh(x_n + r ⊙ (W_hn h + b_hn))  [reset after]  or  tanh(x_n + W_hn (r ⊙ h))
  RNN:   h' = tanh(x + W h) or relu(...)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import ModelError
from .affine import Affine, AffineWalker, poly
from .encoder import read_rnn_op
from .graph import RNN_OPS, Graph, Node

CANONICAL_GATES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"),
                   "rnn_tanh": ("h",), "rnn_relu": ("h",)}


@dataclass
class Cell:
    kind: str                    # lstm, gru, rnn_tanh, rnn_relu
    hidden: int
    where: str                   # for messages
    h_new: set                   # tensors holding the new hidden state
    c_new: set = field(default_factory=set)
    gates: dict = field(default_factory=dict)  # gate -> Affine over input atoms + h_prev
    h_prev: str | None = None    # the atom of the previous hidden state (if known)
    c_prev: str | None = None
    reset_after: bool = True
    n_input: Affine | None = None  # GRU: the n gate's input part
    w_hn: np.ndarray | None = None
    b_hn: np.ndarray | None = None
    op_input: str | None = None  # ONNX operator: its X input
    nodes: set = field(default_factory=set)   # nodes recognised as part of the cell


def _strip(g: Graph, name: str) -> str:
    return g.strip(name, ops=("Identity", "Dropout", "Cast"))


def _op(g: Graph, name: str) -> str | None:
    node = g.producer.get(_strip(g, name))
    return node.op if node is not None else None


def _arg(g: Graph, name: str) -> str:
    return g.producer[_strip(g, name)].inputs[0]


def _from_operator(g: Graph, walker: AffineWalker, node: Node, detect: bool = False) -> Cell:
    op = read_rnn_op(g, node, decoder=True)
    where = node.describe()
    x = node.inputs[0]
    if g.value(x).shape[1 if op.layout else 0] != 1:
        raise ModelError(f"{where}: runs over {g.value(x).shape[0]} time steps; a decoder-step "
                         "graph must run its RNN for exactly one step")
    h0 = node.inputs[5] if len(node.inputs) > 5 else ""
    c0 = node.inputs[6] if len(node.inputs) > 6 else ""
    if not h0 or g.is_const(h0) or (op.cell == "lstm" and (not c0 or g.is_const(c0))):
        raise ModelError(f"{where}: the decoder's RNN must receive its previous state "
                         "(initial_h, and initial_c for an LSTM) from the graph inputs")
    cell = Cell(op.cell, op.hidden, where, {o for o in node.outputs[:2] if o},
                {node.outputs[2]} if len(node.outputs) > 2 and node.outputs[2] else set(),
                reset_after=op.reset_after, op_input=x, nodes={node.name})
    if detect:
        return cell
    xa = walker.of(x)
    ha = walker.of(h0)
    if len(ha.terms) != 1 or np.any(ha.bias) or not np.allclose(next(iter(ha.terms.values())),
                                                                np.eye(op.hidden)):
        raise ModelError(f"{where}: initial_h must be the previous state as given")
    cell.h_prev = next(iter(ha.terms))
    if op.cell == "lstm":
        ca = walker.of(c0)
        cell.c_prev = next(iter(ca.terms)) if len(ca.terms) == 1 else None
    H = op.hidden
    w, r, bw, br = op.w_ih[0].astype(np.float64), op.w_hh[0].astype(np.float64), \
        op.b_ih[0].astype(np.float64), op.b_hh[0].astype(np.float64)
    for k, gate in enumerate(CANONICAL_GATES[op.cell]):
        rows = slice(k * H, (k + 1) * H)
        xpart = xa.apply(w[rows], node.outputs[0]) + Affine({}, bw[rows], {})
        if op.cell == "gru" and gate == "n":
            cell.n_input = xpart
            cell.w_hn, cell.b_hn = r[rows], br[rows]
            continue
        hpart = Affine({cell.h_prev: r[rows]}, br[rows], {cell.h_prev: frozenset(["R"])})
        cell.gates[gate] = xpart + hpart
    return cell


def _unrolled_lstm(g: Graph, walker: AffineWalker, node: Node, detect: bool = False
                   ) -> Cell | None:
    a, b = (_strip(g, i) for i in node.inputs)
    ops = {_op(g, a), _op(g, b)}
    if ops != {"Sigmoid", "Tanh"}:
        return None
    sig, th = (a, b) if _op(g, a) == "Sigmoid" else (b, a)
    cn = _strip(g, _arg(g, th))
    add = g.producer.get(cn)
    if add is None or add.op != "Add":
        return None
    muls = [g.producer.get(_strip(g, i)) for i in add.inputs]
    if any(m is None or m.op != "Mul" for m in muls):
        return None
    roles = []
    for m in muls:
        f1, f2 = (_strip(g, i) for i in m.inputs)
        o1, o2 = _op(g, f1), _op(g, f2)
        if o1 == "Sigmoid" and o2 == "Tanh":
            roles.append(("input", f1, f2))
        elif o2 == "Sigmoid" and o1 == "Tanh":
            roles.append(("input", f2, f1))
        elif o1 == "Sigmoid":
            roles.append(("forget", f1, f2))
        elif o2 == "Sigmoid":
            roles.append(("forget", f2, f1))
        else:
            return None
    kinds = sorted(r[0] for r in roles)
    if kinds != ["forget", "input"]:
        return None
    inp = next(r for r in roles if r[0] == "input")
    fgt = next(r for r in roles if r[0] == "forget")
    pre = {"i": _arg(g, inp[1]), "g": _arg(g, inp[2]), "f": _arg(g, fgt[1]), "o": _arg(g, sig)}
    cell = Cell("lstm", g.width(node.outputs[0]), node.describe(), {node.outputs[0]}, {cn},
                c_prev=fgt[2], nodes={node.name, add.name} | {m.name for m in muls})
    if not detect:
        cell.gates = {k: walker.of(v) for k, v in pre.items()}
    return cell


def _unrolled_gru(g: Graph, walker: AffineWalker, node: Node, detect: bool = False
                  ) -> Cell | None:
    out = node.outputs[0]
    terms = poly(g, out, limit=8)
    if terms is None or len(terms) != 3:
        return None
    factors = {f for k in terms for f in k}
    sigs = [f for f in factors if _op(g, f) == "Sigmoid"]
    tanhs = [f for f in factors if _op(g, f) == "Tanh"]
    others = [f for f in factors if f not in sigs and f not in tanhs]
    if len(sigs) != 1 or len(tanhs) != 1 or not others:
        return None
    z, n = sigs[0], tanhs[0]
    ref = g.canon(others[0])
    if any(not np.array_equal(g.canon(o), ref) for o in others[1:]):
        return None
    h = others[0]

    def key(*fs):
        return tuple(sorted(h if f == "h" else f for f in fs))
    # the h factor may be spelled by several tensors: map them all to `h`
    norm = {}
    for k, c in terms.items():
        nk = tuple(sorted(h if f in others else f for f in k))
        norm[nk] = norm.get(nk, 0.0) + c
    standard = {key(n): 1.0, key(z, n): -1.0, key(z, "h"): 1.0}
    flipped = {key(z, n): 1.0, key("h"): 1.0, key(z, "h"): -1.0}

    def same(a, b):
        return set(a) == set(b) and all(abs(a[k] - b[k]) < 1e-9 for k in a)
    if same(norm, standard):
        z_sign = 1.0
    elif same(norm, flipped):
        z_sign = -1.0
    else:
        return None
    cell = Cell("gru", g.width(out), node.describe(), {out}, nodes={node.name})
    if detect:
        return cell
    pz = walker.of(_arg(g, z))
    cell.gates["z"] = pz if z_sign > 0 else -pz
    xn = walker.of(_arg(g, n))
    products = [a for a in xn.terms if g.producer.get(a) is not None
                and g.producer[a].op == "Mul" and not any(g.is_const(i)
                                                          for i in g.producer[a].inputs)]
    if len(products) != 1:
        raise ModelError(f"{cell.where}: looks like a GRU update, but its candidate state "
                         f"({g.producer[_strip(g, n)].describe()}) does not contain exactly one "
                         "reset-gate product r ⊙ (...)")
    m = products[0]
    f1, f2 = (_strip(g, i) for i in g.producer[m].inputs)
    if _op(g, f2) == "Sigmoid" and _op(g, f1) != "Sigmoid":
        f1, f2 = f2, f1
    if _op(g, f1) != "Sigmoid":
        raise ModelError(f"{cell.where}: the GRU reset product {g.producer[m].describe()} has "
                         "no sigmoid gate")
    cell.gates["r"] = walker.of(_arg(g, f1))
    rest = Affine({a: t for a, t in xn.terms.items() if a != m}, xn.bias,
                  {a: e for a, e in xn.entries.items() if a != m})
    inner = walker.of(f2)
    h_atom = walker.of(h)
    if len(h_atom.terms) != 1:
        return None
    cell.h_prev = next(iter(h_atom.terms))
    wm = xn.terms[m]
    if list(inner.terms) == [cell.h_prev] and np.allclose(inner.terms[cell.h_prev],
                                                          np.eye(cell.hidden)) \
            and not np.any(inner.bias):
        cell.reset_after = False          # W_hn (r ⊙ h)
        cell.w_hn, cell.b_hn = wm, np.zeros(cell.hidden)
    elif list(inner.terms) == [cell.h_prev] and np.allclose(wm, np.eye(cell.hidden)):
        cell.reset_after = True           # r ⊙ (W_hn h + b_hn)
        cell.w_hn, cell.b_hn = inner.terms[cell.h_prev], inner.bias
    else:
        raise ModelError(f"{cell.where}: the GRU reset product {g.producer[m].describe()} is "
                         "neither r ⊙ h (reset before) nor r ⊙ (W h + b) (reset after)")
    cell.n_input = rest
    return cell


def find_cells(g: Graph, walker: AffineWalker) -> list[Cell]:
    """Every recurrent cell of the decoder graph (structure only; roles come later). Cell
    outputs become atoms of the affine walk (an unrolled GRU's new state is an Add)."""
    found = _find(g, walker, detect=True)
    walker.stops |= set().union(*(c.h_new | c.c_new for c in found)) if found else set()
    walker.memo.clear()
    return _find(g, walker, detect=False)


def _find(g: Graph, walker: AffineWalker, detect: bool) -> list[Cell]:
    cells = []
    dec = [n for n in g.nodes if n.graph == "decoder"]
    for node in dec:
        if node.op in RNN_OPS:
            cells.append(_from_operator(g, walker, node, detect))
    for node in dec:
        if node.op == "Mul":
            cell = _unrolled_lstm(g, walker, node, detect)
            if cell is not None:
                cells.append(cell)
    claimed = set().union(*(c.nodes for c in cells)) if cells else set()
    for node in dec:
        if node.op in ("Add", "Sub") and node.name not in claimed:
            cell = _unrolled_gru(g, walker, node, detect)
            if cell is not None:
                cells.append(cell)
    return cells


def find_rnn_cells(g: Graph, walker: AffineWalker, is_state_atom) -> list[Cell]:
    """Unrolled tanh/relu RNN cells: a Tanh/Relu whose pre-activation reads a previous
    state (is_state_atom(atom) is true for state inputs). Only used when no other cell is
    found."""
    cells = []
    for node in g.nodes:
        if node.graph != "decoder" or node.op not in ("Tanh", "Relu"):
            continue
        pre = walker.of(node.inputs[0])
        states = [a for a in pre.terms if is_state_atom(a)]
        if len(states) == 1 and pre.width == g.width(states[0]):
            kind = "rnn_tanh" if node.op == "Tanh" else "rnn_relu"
            cell = Cell(kind, pre.width, node.describe(), {node.outputs[0]}, nodes={node.name})
            cell.gates["h"] = pre
            cell.h_prev = states[0]
            cells.append(cell)
    return cells
