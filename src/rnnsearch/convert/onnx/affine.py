"""Affine forms: a tensor written as sum_a W_a x_a + b over "atoms" x_a.

Walking back from a tensor through Gemm / MatMul with constant weights, Add, Sub, Neg,
Mul or Div by constants, feature-axis Concat / Split / Slice / Gather and layout-only
operators (Transpose, Reshape, Squeeze, ... that keep every feature vector intact) gives
the tensor as an affine function of the tensors where the walk stops (the atoms: graph
inputs, embedding lookups, nonlinearities, products of two variables, RNN operators). So
`Linear(cat(a, b))`, `Linear1(a) + Linear2(b)`, a fused gate matrix followed by a Split, a
Keras `MatMul(x, kernel) + bias` and an embedding projection all reduce to the same form,
whatever way the exporter spelled them.

Also here: `poly`, the expansion of an elementwise expression (Add/Sub/Mul/Neg of
tensors and scalar constants) into signed monomials, used to recognise GRU updates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import Graph

LAYOUT_OPS = {"Identity", "Dropout", "Cast", "Transpose", "Reshape", "Squeeze", "Unsqueeze",
              "Expand", "Flatten", "Tile"}


@dataclass
class Affine:
    terms: dict      # atom tensor name -> W [out, in] (float64)
    bias: np.ndarray  # [out]
    entries: dict    # atom -> frozenset of the linear nodes through which it met a weight

    @property
    def width(self) -> int:
        return int(self.bias.shape[0])

    def apply(self, w: np.ndarray, node_id: str) -> "Affine":
        return Affine({a: w @ m for a, m in self.terms.items()}, w @ self.bias,
                      {a: e or frozenset([node_id]) for a, e in self.entries.items()})

    def scale(self, v: np.ndarray) -> "Affine":
        v = np.broadcast_to(v, self.bias.shape)
        return Affine({a: v[:, None] * m for a, m in self.terms.items()}, v * self.bias,
                      dict(self.entries))

    def rows(self, idx) -> "Affine":
        return Affine({a: m[idx] for a, m in self.terms.items()}, self.bias[idx],
                      dict(self.entries))

    def __add__(self, other: "Affine") -> "Affine":
        terms = dict(self.terms)
        entries = dict(self.entries)
        for a, m in other.terms.items():
            terms[a] = terms[a] + m if a in terms else m
            entries[a] = entries.get(a, frozenset()) | other.entries[a]
        return Affine(terms, self.bias + other.bias, entries)

    def __neg__(self) -> "Affine":
        return self.scale(-np.ones_like(self.bias))


def stack(parts: list[Affine]) -> Affine:
    """Concatenate along the output (feature) axis."""
    width = sum(p.width for p in parts)
    atoms = []
    for p in parts:
        atoms.extend(a for a in p.terms if a not in atoms)
    terms, entries, offset = {}, {}, 0
    bias = np.concatenate([p.bias for p in parts])
    for p in parts:
        for a, m in p.terms.items():
            if a not in terms:
                terms[a] = np.zeros((width, m.shape[1]))
                entries[a] = frozenset()
            terms[a][offset:offset + p.width] = m
            entries[a] = entries[a] | p.entries[a]
        offset += p.width
    return Affine(terms, bias, entries)


def row_vector(value: np.ndarray, width: int) -> np.ndarray | None:
    """A constant that is the same for every row, as a [width] vector (None otherwise)."""
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0 or v.size == 1:
        return np.full(width, float(v.reshape(-1)[0]))
    last = v.shape[-1]
    if last not in (1, width):
        return None
    flat = v.reshape(-1, last)
    if not np.all(flat == flat[0]):
        return None
    return np.broadcast_to(flat[0], (width,)).copy()


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


class AffineWalker:
    def __init__(self, graph: Graph, stops: set[str] | None = None):
        self.g = graph
        self.stops = set(stops or ())
        self.memo: dict[str, Affine] = {}

    def atom(self, name: str) -> Affine:
        w = self.g.width(name)
        return Affine({name: np.eye(w)}, np.zeros(w), {name: frozenset()})

    def of(self, name: str) -> Affine:
        if name not in self.memo:
            self.memo[name] = self._of(name)
        return self.memo[name]

    def _const_or_atom(self, name: str, width: int) -> Affine:
        if self.g.is_const(name):
            v = row_vector(self.g.value(name), width)
            if v is not None:
                return Affine({}, v, {})
        return self.atom(name)

    def _of(self, name: str) -> Affine:  # noqa: C901 (one case per operator)
        g = self.g
        node = g.producer.get(name)
        width = g.width(name)
        if name in self.stops or node is None or g.is_const(name):
            return self._const_or_atom(name, width)
        op = node.op
        out_v = g.value(name)
        x = node.inputs[0] if node.inputs else ""
        if op in LAYOUT_OPS:
            if op == "Dropout" and node.outputs[0] != name:
                return self.atom(name)
            if op == "Cast" and not np.issubdtype(out_v.dtype, np.floating):
                return self.atom(name)
            in_v = g.value(x)
            if op == "Transpose":
                perm = node.attrs.get("perm", list(range(in_v.ndim))[::-1])
                keeps = perm[-1] == in_v.ndim - 1
            else:
                keeps = in_v.ndim >= 1 and out_v.ndim >= 1 and in_v.shape[-1] == out_v.shape[-1]
                if op == "Tile":
                    keeps = keeps and int(g.value(node.inputs[1])[-1]) == 1
            return self.of(x) if keeps else self.atom(name)
        if op == "Gemm":
            a, b = node.inputs[0], node.inputs[1]
            if node.attrs.get("transA", 0) or g.is_const(a) or not g.is_const(b):
                return self.atom(name)
            w = g.value(b).astype(np.float64)
            w = w if node.attrs.get("transB", 0) else w.T
            w = w * float(node.attrs.get("alpha", 1.0))
            out = self.of(a).apply(w, name)
            if len(node.inputs) > 2 and node.inputs[2]:
                c = row_vector(g.value(node.inputs[2]), width)
                if c is None:
                    return self.atom(name)
                out = out + Affine({}, c * float(node.attrs.get("beta", 1.0)), {})
            return out
        if op == "MatMul":
            a, b = node.inputs
            if g.is_const(a) or not g.is_const(b) or g.value(b).ndim != 2:
                return self.atom(name)
            return self.of(a).apply(g.value(b).astype(np.float64).T, name)
        if op in ("Add", "Sum", "Sub"):
            parts = []
            for i, inp in enumerate(node.inputs):
                part = self._const_or_atom(inp, width) if g.is_const(inp) else self.of(inp)
                if part.width != width:
                    return self.atom(name)  # broadcasting over features: not a row map
                parts.append(-part if op == "Sub" and i == 1 else part)
            out = parts[0]
            for p in parts[1:]:
                out = out + p
            return out
        if op == "Neg":
            return -self.of(x)
        if op in ("Mul", "Div"):
            a, b = node.inputs
            if op == "Mul" and g.is_const(a) and not g.is_const(b):
                a, b = b, a
            if g.is_const(a) or not g.is_const(b):
                return self.atom(name)
            v = row_vector(g.value(b), width)
            inner = self.of(a)
            if v is None or inner.width != width:
                return self.atom(name)
            return inner.scale(1.0 / v if op == "Div" else v)
        if op == "Concat":
            rank = out_v.ndim
            if _axis(node.attrs["axis"], rank) != rank - 1:
                return self.atom(name)
            parts = []
            for inp in node.inputs:
                w = g.width(inp)
                if g.is_const(inp):
                    c = row_vector(g.value(inp), w)
                    if c is None:
                        return self.atom(name)
                    parts.append(Affine({}, c, {}))
                else:
                    parts.append(self.of(inp))
            return stack(parts)
        if op in ("Split", "Slice", "Gather"):
            idx = self._feature_selection(node, name)
            if idx is None:
                return self.atom(name)
            return self.of(x).rows(idx)
        return self.atom(name)

    def _feature_selection(self, node, name: str):
        """Indices of the input features kept by a Split/Slice/Gather on the last axis;
        None when the operator also touches another axis."""
        g = self.g
        in_v = g.value(node.inputs[0])
        rank, F = in_v.ndim, in_v.shape[-1] if in_v.ndim else 0
        if rank == 0:
            return None
        if node.op == "Gather":
            if _axis(node.attrs.get("axis", 0), rank) != rank - 1 or \
                    not g.is_const(node.inputs[1]):
                return None
            idx = np.asarray(g.value(node.inputs[1]))
            return None if idx.ndim != 1 else np.where(idx < 0, idx + F, idx)
        if node.op == "Split":
            if _axis(node.attrs.get("axis", 0), rank) != rank - 1:
                return None
            if len(node.inputs) > 1 and node.inputs[1]:
                sizes = [int(s) for s in g.value(node.inputs[1])]
            elif "split" in node.attrs:
                sizes = [int(s) for s in node.attrs["split"]]
            else:
                n = len(node.outputs)
                step = -(-F // n)
                sizes = [min(step, F - i * step) for i in range(n)]
            k = node.outputs.index(name)
            start = sum(sizes[:k])
            return np.arange(start, start + sizes[k])
        # Slice
        if len(node.inputs) >= 3:
            starts = g.value(node.inputs[1])
            ends = g.value(node.inputs[2])
            axes = g.value(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] \
                else np.arange(len(starts))
            steps = g.value(node.inputs[4]) if len(node.inputs) > 4 and node.inputs[4] \
                else np.ones(len(starts), dtype=np.int64)
        else:
            starts, ends = node.attrs["starts"], node.attrs["ends"]
            axes = node.attrs.get("axes", list(range(len(starts))))
            steps = [1] * len(starts)
        idx = np.arange(F)
        for s, e, a, st in zip(starts, ends, axes, steps):
            a = _axis(int(a), rank)
            if a != rank - 1:
                n = in_v.shape[a]
                if len(range(n)[slice(int(s), int(e), int(st))]) != n or int(st) != 1:
                    return None
                continue
            idx = idx[slice(int(s), int(e), int(st))]
        return idx


def poly(g: Graph, name: str, limit: int = 16):
    """Signed monomials {tuple(sorted factors): coefficient} of an elementwise expression,
    or None when it grows past `limit` terms. Factors are the tensors that are not
    Add/Sub/Mul/Neg/layout outputs; scalar constants become coefficients."""
    def walk(n, depth):
        if depth > 12:
            return None
        node = g.producer.get(n)
        if g.is_const(n):
            v = np.asarray(g.value(n), dtype=np.float64)
            if v.size and np.all(v == v.reshape(-1)[0]):
                return {(): float(v.reshape(-1)[0])}
            return {(n,): 1.0}
        if node is None:
            return {(n,): 1.0}
        if node.op in ("Identity", "Dropout", "Squeeze", "Unsqueeze", "Reshape") and \
                node.outputs[0] == n and g.width(n) == g.width(node.inputs[0]):
            return walk(node.inputs[0], depth + 1)
        if node.op in ("Add", "Sub"):
            a, b = walk(node.inputs[0], depth + 1), walk(node.inputs[1], depth + 1)
            if a is None or b is None:
                return None
            out = dict(a)
            for k, c in b.items():
                out[k] = out.get(k, 0.0) + (-c if node.op == "Sub" else c)
            return out
        if node.op == "Neg":
            a = walk(node.inputs[0], depth + 1)
            return None if a is None else {k: -c for k, c in a.items()}
        if node.op == "Mul":
            a, b = walk(node.inputs[0], depth + 1), walk(node.inputs[1], depth + 1)
            if a is None or b is None or len(a) * len(b) > limit:
                return None
            out = {}
            for ka, ca in a.items():
                for kb, cb in b.items():
                    k = tuple(sorted(ka + kb))
                    out[k] = out.get(k, 0.0) + ca * cb
            return out
        return {(n,): 1.0}

    result = walk(name, 0)
    if result is None or len(result) > limit:
        return None
    return {k: c for k, c in result.items() if abs(c) > 1e-12}
