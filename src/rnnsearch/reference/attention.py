"""The decoder's attention in plain PyTorch, every type and option of docs/model-format.md
("attention"), written from the papers' equations (cited per method) rather than from the
engine: the engine computes the same numbers its own way (rs_attention_*.c), and the
tests compare the two.

Every attention module (this one, and the types that carry state in
reference/stateful_attention.py) has the interface the decoder uses:
  keys(memory)          -> computed once per batch
  initial_state(mask)   -> per-row state: None, a tensor or a tuple of tensors (rows first)
  step(query, keys, memory, mask, state, window=None, embedding=None)
                        -> context [B, context_width], weights [B, S], new state
`window` ([B, S] bool or None) is the decode-time attention constraint: positions outside
it get no weight; `embedding` is the previous target token's (forward attention's
transition agent reads it).

Shapes: B rows, S source positions, D_m memory width.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..attention_options import context_width, key_input_width, value_input_width
from .deep import SplitLayerNorm


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, scaling: float,
                   window: torch.Tensor | None) -> torch.Tensor:
    """softmax_j(scaling * e_j) over the sentence's positions (and the window)."""
    allowed = mask if window is None else mask & window
    return torch.softmax((scaling * scores).masked_fill(~allowed, float("-inf")), dim=-1)


class Attention(nn.Module):
    """Parameters under the spec's tensor names (reference.export.spec_parameters): key,
    query (Linear), v, scale; gate, value (Linear); position (Linear), position_v and
    position_v_bias (local-p); energy_bias, energy_gain (monotonic, mocha); chunk_query,
    chunk_key (Linear) and chunk_v (mocha); key_norm, query_norm (layer_norm: Marian's
    --layer-normalization on the projected keys and query). Absent ones are None."""

    def __init__(self, att: dict, query_width: int, memory_width: int):
        super().__init__()
        self.type, self.score, self.query_width = att["type"], att["score"], query_width
        self.hard, self.scaling = att["hard"], att["scaling"]
        # additive scores: tanh, or relu (the PyTorch Show, Attend and Tell tutorial)
        self.score_activation = torch.relu if att["score_activation"] == "relu" else torch.tanh
        kv = att["key_value"] or {}
        self.split = kv.get("split")
        key_in = key_input_width(att, memory_width)
        self.context_width = context_width(att, memory_width)
        self.key = self.query = self.v = self.scale = None
        if self.score == "general":
            self.key = nn.Linear(key_in, query_width)
        elif self.score == "additive":
            if att["key_projection"]:
                self.key = nn.Linear(key_in, att["size"])
            if att["query_projection"]:
                self.query = nn.Linear(query_width, att["size"])
            width = att["size"] if att["key_projection"] else key_in
            self.v = nn.Parameter(torch.ones(width))  # the spec's default when absent
        elif self.score == "dot":
            self.scale = nn.Parameter(torch.ones(1))
        self.key_norm = self.query_norm = None
        if att["layer_norm"]:
            self.key_norm = SplitLayerNorm(att["size"], att["layer_norm_eps"])
            self.query_norm = SplitLayerNorm(att["size"], att["layer_norm_eps"])
        self.gate = None
        if att["gate"]:   # one beta, or one per context dimension (gate_per_dimension)
            self.gate = nn.Linear(query_width,
                                  self.context_width if att["gate_per_dimension"] else 1)
        self.value = None
        if kv.get("value_size") is not None:
            self.value = nn.Linear(value_input_width(att, memory_width), kv["value_size"])
        self.local = att["local"]
        self.position = self.position_v = self.position_v_bias = None
        if self.local is not None and self.local["mode"] == "predictive":
            self.position = nn.Linear(query_width, self.local["position_size"])
            self.position_v = nn.Parameter(torch.empty(self.local["position_size"]))
            nn.init.uniform_(self.position_v, -1.0, 1.0)
            self.position_v_bias = nn.Parameter(torch.zeros(1))
        self.energy_bias = self.energy_gain = None
        if self.type in ("monotonic", "mocha"):
            self.energy_bias = nn.Parameter(torch.zeros(1))
            if self.score == "additive":  # absent: g = |v|, i.e. v as it is
                self.energy_gain = nn.Parameter(self.v.detach().norm().reshape(1))
        self.chunk_size = att["mocha"]["chunk_size"] if att["mocha"] else None
        self.chunk_query = self.chunk_key = self.chunk_v = None
        if self.type == "mocha":
            size = att["mocha"]["size"]
            self.chunk_query = nn.Linear(query_width, size)
            self.chunk_key = nn.Linear(key_in, size)
            self.chunk_v = nn.Parameter(torch.empty(size))
            nn.init.uniform_(self.chunk_v, -1.0, 1.0)

    # ------------------------------------------------------------------ memory
    def _key_part(self, memory):
        return memory[..., :self.split] if self.split is not None else memory

    def _project_keys(self, part):
        if self.key is None:
            return part
        keys = self.key(part)
        return self.key_norm(keys) if self.key_norm is not None else keys

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        """Computed once per batch of sentences: [B, S, key width]."""
        return self._project_keys(self._key_part(memory))

    def values(self, memory: torch.Tensor) -> torch.Tensor:
        """What the context sums (Daniluk et al. 2017, eq. 7-9: h_j = [k_j; v_j]; or a value
        projection, as Sockeye's split key/value projection): [B, S, D_c]."""
        part = memory[..., self.split:] if self.split is not None else memory
        return self.value(part) if self.value is not None else part

    # ------------------------------------------------------------------ scores
    def energies(self, query, keys):
        """e [B, S] of every position: Luong et al. 2015 eq. 8 (dot, general), Vaswani et
        al. 2017 (scaled dot), Bahdanau et al. 2015 eq. A.1.2 (additive); for monotonic and
        mocha Raffel et al. 2017 eq. 16: g v/|v| in place of v, plus r."""
        if self.score == "additive":
            q = self.query(query) if self.query is not None else query
            if self.query_norm is not None:
                q = self.query_norm(q)
            v = self.v
            if self.energy_gain is not None:
                v = self.energy_gain * v / v.norm()
            e = self.score_activation(q[:, None, :] + keys) @ v
        else:
            e = torch.bmm(keys, query[:, :, None]).squeeze(2)
            if self.score == "dot":
                e = e * self.scale
            elif self.score == "scaled_dot":
                e = e / math.sqrt(self.query_width)
        if self.energy_bias is not None:
            e = e + self.energy_bias
        return e

    # ------------------------------------------------------------------ state
    def initial_state(self, mask: torch.Tensor) -> torch.Tensor | None:
        """Per row: local, the decoding step; monotonic and mocha, the previous position
        (−1 once nothing was chosen). None for stateless types."""
        if self.type in ("local", "monotonic", "mocha"):
            return torch.zeros(mask.size(0), dtype=torch.long)
        return None

    def forward(self, query, keys, memory, mask):
        """Stateless attention (global): query [B, H_d] -> context [B, D_c], weights [B, S]."""
        context, weights, _ = self.step(query, keys, memory, mask, None)
        return context, weights

    def step(self, query, keys, memory, mask, state, window=None, embedding=None):
        """One decoder step -> (context [B, D_c], weights [B, S], new state). window: the
        attention constraint's positions ([B, S] bool) or None; embedding: unused."""
        values = self.values(memory)
        if self.type == "global":
            weights = masked_softmax(self.energies(query, keys), mask, self.scaling, window)
        elif self.type == "local":
            weights = self._local(query, keys, mask, state, window)
            state = state + 1
        else:
            weights, state = self._monotonic(query, keys, memory, mask, state, window)
        if self.hard:
            weights = self._argmax(weights, mask)
        context = torch.bmm(weights[:, None, :], values).squeeze(1)
        if self.gate is not None:  # Xu et al. 2015, section 4.2.1: beta = sigmoid(f_beta(h))
            context = torch.sigmoid(self.gate(query)) * context
        return context, weights, state

    @staticmethod
    def _argmax(weights, mask):
        """Xu et al. 2015, hard attention at inference: one-hot at the first largest weight
        (all zero where a row has no weight at all)."""
        best = weights.masked_fill(~mask, float("-inf")).argmax(dim=-1)
        one_hot = torch.zeros_like(weights).scatter_(1, best[:, None], 1.0)
        return one_hot * (weights.sum(dim=-1, keepdim=True) > 0)

    # ------------------------------------------------------------------ local
    def _local(self, query, keys, mask, step, constraint):
        """Luong et al. 2015, section 3.2: local-m p_t = t; local-p p_t = S sigmoid(v_p^T
        tanh(W_p h_t)) (eq. 9); a softmax over the window [c - D, c + D], c = floor(p_t) or
        round(p_t), then times exp(-(s - p_t)^2 / (2 sigma^2)), sigma = D/2 (eq. 10). With
        the attention constraint only the sentence positions in both windows are scored
        (zero_pad's pads, outside the sentence, stay); scaling multiplies every score."""
        options, D = self.local, self.local["window"]
        lengths = mask.sum(dim=1).to(query.dtype)
        if options["mode"] == "predictive":
            p = lengths * torch.sigmoid(torch.tanh(self.position(query)) @ self.position_v
                                        + self.position_v_bias)
        else:
            p = step.to(query.dtype)
        centre = torch.floor(p) if options["center"] == "floor" else torch.round(p)
        s = torch.arange(mask.size(1), dtype=query.dtype)[None, :]
        window = mask & (s >= centre[:, None] - D) & (s <= centre[:, None] + D)
        pads = (2 * D + 1 - window.sum(dim=1, keepdim=True)).to(query.dtype)
        if constraint is not None:
            window = window & constraint
        e = (self.scaling * self.energies(query, keys)).masked_fill(~window, float("-inf"))
        if options["edges"] == "zero_pad":
            # positions of the window outside the sentence are zero memory vectors: their
            # key is the key projection of zeros, and they add nothing to the context
            zero = torch.zeros(1, 1, keys.size(-1) if self.key is None else self.key.in_features)
            pad_key = self._project_keys(zero)
            pad = self.scaling * self.energies(query, pad_key.expand(query.size(0), 1, -1))
            total = torch.logsumexp(torch.cat([e, pad + torch.log(pads)], dim=1), dim=1)
            weights = torch.exp(e - total[:, None]).nan_to_num(0.0)  # nothing in the window
        else:
            weights = torch.softmax(e, dim=-1).nan_to_num(0.0)  # empty window: no weights
        if options["gaussian"]:
            sigma = D / 2
            weights = weights * torch.exp(-(s - p[:, None]) ** 2 / (2 * sigma ** 2))
        return weights * window

    # ------------------------------------------------------------------ monotonic
    def _monotonic(self, query, keys, memory, mask, previous, constraint):
        """Raffel et al. 2017, Algorithm 1 at test time: from the previous position t_{i-1},
        the first j with sigmoid(e_j) >= 0.5 (e_j >= 0); none: zero context, and, as the
        previous attention is then all zeros, none at every later step (TensorFlow's
        monotonic_attention(mode="hard")). MoChA (Chiu & Raffel 2018, Algorithm 1): a
        softmax of the chunk energies u_k = v^T tanh(W q + b + U h_k) over k in
        [t_i - w + 1, t_i], times the scaling. With the attention constraint, only positions
        inside its window can be chosen and the chunk is cut to it."""
        S = mask.size(1)
        s = torch.arange(S)[None, :]
        choosable = (self.energies(query, keys) >= 0) & mask & (s >= previous[:, None]) & \
            (previous[:, None] >= 0)
        if constraint is not None:
            choosable = choosable & constraint
        first = choosable & (torch.cumsum(choosable.long(), dim=1) == 1)
        chosen = first.any(dim=1)
        position = torch.where(chosen, first.long().argmax(dim=1), torch.full_like(previous, -1))
        if self.type == "monotonic":
            return first.to(query.dtype), position
        chunk_keys = self.chunk_key(self._key_part(memory))
        u = self.scaling * (torch.tanh(self.chunk_query(query)[:, None, :] + chunk_keys)
                            @ self.chunk_v)
        chunk = chosen[:, None] & (s <= position[:, None]) & \
            (s > position[:, None] - self.chunk_size)
        if constraint is not None:
            chunk = chunk & constraint
        weights = torch.softmax(u.masked_fill(~chunk, float("-inf")), dim=-1).nan_to_num(0.0)
        return weights, position
