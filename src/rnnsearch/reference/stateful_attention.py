"""Attention that carries state from step to step, in plain PyTorch from the papers'
equations (docs/model-format.md, "location" and "coverage"): location-aware attention
(Chorowski et al. 2015, with the inputs ESPnet, SpeechBrain and Tacotron 2 use) and
coverage (Tu et al. 2016, See et al. 2017, Sockeye's learned updates).

Every module here is built as Module(att, query_width, memory_width, embedding_width) and
has the interface of every attention module (reference/attention.py: keys, initial_state,
step, context_width); its state is a tuple of tensors, rows first.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import masked_softmax


def start_weights(initial: str, mask: torch.Tensor) -> torch.Tensor:
    """[B, S]: uniform over each sentence (1/length), zeros, or one-hot on position 0."""
    lengths = mask.sum(dim=1, keepdim=True).to(torch.float32)
    if initial == "uniform":
        return mask.to(torch.float32) * (1.0 / lengths)
    weights = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    if initial == "first":
        weights[:, 0] = 1.0
    return weights


class AdditiveScore(nn.Module):
    """e_j = v . tanh(extra_j + W_k h_j + b_k + W_q q + b_q): the score the stateful types
    share; `extra` is what the state contributes."""

    def __init__(self, size: int, query_width: int, memory_width: int):
        super().__init__()
        self.key = nn.Linear(memory_width, size)
        self.query = nn.Linear(query_width, size)
        self.v = nn.Parameter(torch.ones(size))

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key(memory)

    def forward(self, query, keys, extra):
        return torch.tanh(extra + keys + self.query(query)[:, None, :]) @ self.v


class LocationAttention(nn.Module):
    """Location-aware attention: the convolution `conv` (Conv1d over the N_in remembered
    weight vectors, no bias, centred) gives F_j; the score's extra term is P F_j + b_P, or
    (recurrent) the state h of an LSTM cell fed max_j relu(F_j)."""

    def __init__(self, att: dict, query_width: int, memory_width: int, embedding_width: int):
        super().__init__()
        self.context_width = memory_width
        loc = att["location"]
        self.input, self.initial = loc["input"], loc["initial"]
        self.inputs = {"previous": 1, "cumulative": 1, "previous_and_cumulative": 2}.get(
            self.input, loc["history"])
        self.scaling = att["scaling"]
        self.size = att["size"]
        self.score = AdditiveScore(att["size"], query_width, memory_width)
        k = loc["kernel_size"]
        self.conv = nn.Conv1d(self.inputs, loc["channels"], k, padding=(k - 1) // 2, bias=False)
        self.projection = self.lstm = None
        if loc["recurrent"]:
            self.lstm = nn.LSTMCell(loc["channels"], att["size"])
        else:
            self.projection = nn.Linear(loc["channels"], att["size"])

    def keys(self, memory):
        return self.score.keys(memory)

    def initial_state(self, mask):
        start = start_weights(self.initial, mask)
        state = (start[:, None, :].repeat(1, self.inputs, 1),)  # [B, N_in, S]
        if self.lstm is not None:
            zeros = start.new_zeros(mask.size(0), self.size)
            state += (zeros, zeros)
        return state

    def step(self, query, keys, memory, mask, state, window=None, embedding=None):
        remembered = state[0]
        features = self.conv(remembered).transpose(1, 2)  # [B, S, C]
        rest = ()
        if self.lstm is None:
            extra = self.projection(features)
        else:  # max over the sentence's positions of relu(F), into the LSTM cell
            pooled = torch.relu(features).masked_fill(~mask[:, :, None], 0.0).amax(dim=1)
            h, c = self.lstm(pooled, (state[1], state[2]))
            extra, rest = h[:, None, :], (h, c)
        weights = masked_softmax(self.score(query, keys, extra), mask, self.scaling, window)
        context = torch.bmm(weights[:, None, :], memory).squeeze(1)
        return context, weights, (self._remember(remembered, weights),) + rest

    def _remember(self, remembered, weights):
        if self.input == "previous":
            return weights[:, None, :]
        if self.input == "cumulative":
            return remembered + weights[:, None, :]
        if self.input == "previous_and_cumulative":
            return torch.stack([weights, remembered[:, 1] + weights], dim=1)
        return torch.cat([remembered[:, 1:], weights[:, None, :]], dim=1)  # history


_ACTIVATIONS = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu,
                "softrelu": F.softplus}


class CoverageAttention(nn.Module):
    """Coverage: cov_j (N_c floats per position) enters the score as W_c cov_j + b_c and is
    updated from the step's weights: a running sum, act(U_h h_j + U_q q + u_a a_j + U_c
    cov_j), or a GRU (gates [r, z, n], reset after) with input [h_j; q; a_j] and state
    cov_j."""

    def __init__(self, att: dict, query_width: int, memory_width: int, embedding_width: int):
        super().__init__()
        self.context_width = memory_width
        cov = att["coverage"]
        self.update, self.initial, self.size = cov["update"], cov["initial"], cov["size"]
        self.scaling = att["scaling"]
        self.score = AdditiveScore(att["size"], query_width, memory_width)
        self.projection = nn.Linear(self.size, att["size"])
        self.memory = self.query = self.previous = self.attention = None
        if self.update != "sum":
            G = (3 if self.update == "gru" else 1) * self.size
            self.memory = nn.Linear(memory_width, G)
            self.query = nn.Linear(query_width, G)
            self.previous = nn.Linear(self.size, G)
            self.attention = nn.Parameter(torch.zeros(G))

    def keys(self, memory):
        return self.score.keys(memory)

    def initial_state(self, mask):
        if self.update == "sum":
            return (start_weights(self.initial, mask)[:, :, None],)
        return (torch.zeros(*mask.shape, self.size),)

    def step(self, query, keys, memory, mask, state, window=None, embedding=None):
        coverage = state[0]  # [B, S, N_c]
        weights = masked_softmax(self.score(query, keys, self.projection(coverage)), mask,
                                 self.scaling, window)
        context = torch.bmm(weights[:, None, :], memory).squeeze(1)
        return context, weights, (self._updated(coverage, weights, query, memory, mask),)

    def _updated(self, coverage, weights, query, memory, mask):
        if self.update == "sum":
            return coverage + weights[:, :, None]
        inputs = self.memory(memory) + self.query(query)[:, None, :] + \
            weights[:, :, None] * self.attention
        if self.update == "gru":
            N = self.size
            hidden = self.previous(coverage)
            r = torch.sigmoid(inputs[..., :N] + hidden[..., :N])
            z = torch.sigmoid(inputs[..., N:2 * N] + hidden[..., N:2 * N])
            n = torch.tanh(inputs[..., 2 * N:] + r * hidden[..., 2 * N:])
            new = (1 - z) * n + z * coverage
        else:
            new = _ACTIVATIONS[self.update](inputs + self.previous(coverage))
        return new * mask[:, :, None]  # padding keeps no coverage


class ForwardAttention(nn.Module):
    """Forward attention (Zhang et al. 2018): location-aware energies over the previous
    weights p, w = softmax(scaling e), then w'_j = (p_j + p_{j-1}) w_j — or, with the
    transition agent, (u p_j + (1 - u) p_{j-1}) w_j, u = sigmoid(W [c; E y_prev; q] + b)
    from the previous step (1/2 at the first) — clamped below at 1e-6 over the sentence and
    divided by its sum."""

    def __init__(self, att: dict, query_width: int, memory_width: int, embedding_width: int):
        super().__init__()
        self.context_width = memory_width
        loc = att["location"]
        self.initial, self.scaling = loc["initial"], att["scaling"]
        self.score = AdditiveScore(att["size"], query_width, memory_width)
        k = loc["kernel_size"]
        self.conv = nn.Conv1d(1, loc["channels"], k, padding=(k - 1) // 2, bias=False)
        self.projection = nn.Linear(loc["channels"], att["size"])
        self.transition = None
        if att["forward"]["transition_agent"]:
            self.transition = nn.Linear(memory_width + embedding_width + query_width, 1)

    def keys(self, memory):
        return self.score.keys(memory)

    def initial_state(self, mask):
        return start_weights(self.initial, mask), torch.full((mask.size(0),), 0.5)

    def step(self, query, keys, memory, mask, state, window=None, embedding=None):
        previous, u = state
        features = self.conv(previous[:, None, :]).transpose(1, 2)
        weights = masked_softmax(self.score(query, keys, self.projection(features)), mask,
                                 self.scaling, window)
        shifted = F.pad(previous, (1, 0))[:, :-1]
        if self.transition is None:
            mixed = previous + shifted
        else:
            mixed = u[:, None] * previous + (1 - u[:, None]) * shifted
        weights = torch.clamp(mixed * weights, min=1e-6) * mask
        weights = weights / weights.sum(dim=1, keepdim=True)
        context = torch.bmm(weights[:, None, :], memory).squeeze(1)
        if self.transition is not None:
            u = torch.sigmoid(self.transition(torch.cat([context, embedding, query], dim=-1)))
            u = u.squeeze(1)
        return context, weights, (weights, u)


class MultiHeadAttention(nn.Module):
    """ESPnet's multi-head attention of RNN decoders: head h scores with its slice of the
    stacked key/query projections — sum(tanh(K_h,j) * tanh(q_h)) (tanh_dot) or
    v_h . tanh(K_h,j + q_h + P_h F_h,j) (additive, F_h the location features of the head's
    previous weights) — and reads c_h = sum_j w_h,j W_v,h h_j; c = W_o [c_1; ...; c_H]. One
    head without value projection reads the memory itself (ESPnet's dot). The weights it
    returns are the heads' mean."""

    def __init__(self, att: dict, query_width: int, memory_width: int, embedding_width: int):
        super().__init__()
        self.context_width = memory_width
        mh = att["multi_head"]
        self.heads, self.size, self.scaling = mh["heads"], att["size"], att["scaling"]
        self.tanh_dot = att["score"] == "tanh_dot"
        self.key = nn.Linear(memory_width, self.heads * self.size)
        self.query = nn.Linear(query_width, self.heads * self.size)
        self.v = None if self.tanh_dot else nn.Parameter(torch.ones(self.heads * self.size))
        self.value = self.output = None
        if mh["value_size"] is not None:
            self.value = nn.Linear(memory_width, self.heads * mh["value_size"])
            self.output = nn.Linear(self.heads * mh["value_size"], memory_width)
        self.convs = self.projections = None
        if att["location"] is not None:
            C = att["location"]["channels"]
            self.initial = att["location"]["initial"]
            self.convs = nn.ModuleList(nn.Conv1d(1, C, k, padding=(k - 1) // 2, bias=False)
                                       for k in mh["kernel_sizes"])
            self.projections = nn.ModuleList(nn.Linear(C, self.size) for _ in range(self.heads))

    def keys(self, memory):
        keys = self.key(memory)
        return torch.tanh(keys) if self.tanh_dot else keys

    def initial_state(self, mask):
        if self.convs is None:
            return ()
        return (start_weights(self.initial, mask)[:, None, :].repeat(1, self.heads, 1),)

    def step(self, query, keys, memory, mask, state, window=None, embedding=None):
        B, S, d = keys.size(0), keys.size(1), self.size
        queries = self.query(query)
        if self.tanh_dot:
            queries = torch.tanh(queries)
        values = memory if self.value is None else self.value(memory)
        dv = values.size(-1) // self.heads
        contexts, weights = [], []
        for h in range(self.heads):
            k, q = keys[..., h * d:(h + 1) * d], queries[:, h * d:(h + 1) * d]
            if self.tanh_dot:
                scores = (k * q[:, None, :]).sum(dim=-1)
            else:
                extra = 0.0
                if self.convs is not None:
                    features = self.convs[h](state[0][:, h:h + 1, :]).transpose(1, 2)
                    extra = self.projections[h](features)
                scores = torch.tanh(extra + k + q[:, None, :]) @ self.v[h * d:(h + 1) * d]
            w = masked_softmax(scores, mask, self.scaling, window)
            weights.append(w)
            head_values = values[..., h * dv:(h + 1) * dv]
            contexts.append(torch.bmm(w[:, None, :], head_values).squeeze(1))
        context = torch.cat(contexts, dim=-1)
        if self.output is not None:
            context = self.output(context)
        stacked = torch.stack(weights, dim=1)  # [B, H, S]
        new_state = (stacked,) if self.convs is not None else ()
        return context, stacked.mean(dim=1), new_state


STATEFUL = {"location": LocationAttention, "coverage": CoverageAttention,
            "forward": ForwardAttention, "multi_head": MultiHeadAttention}


def stateful_parameters(attention: nn.Module) -> dict[str, nn.Parameter]:
    """The type's own parameters under their docs/model-format.md tensor names."""
    names = {}
    if isinstance(attention, MultiHeadAttention):
        return _multi_head_parameters(attention)
    score = attention.score
    for part in ("key", "query"):
        linear = getattr(score, part)
        names[f"attention.{part}.weight"] = linear.weight
        names[f"attention.{part}.bias"] = linear.bias
    names["attention.v"] = score.v
    if isinstance(attention, ForwardAttention):
        names["attention.location.conv"] = attention.conv.weight
        names["attention.location.projection.weight"] = attention.projection.weight
        names["attention.location.projection.bias"] = attention.projection.bias
        if attention.transition is not None:
            names["attention.forward.transition.weight"] = attention.transition.weight
            names["attention.forward.transition.bias"] = attention.transition.bias
    elif isinstance(attention, LocationAttention):
        names["attention.location.conv"] = attention.conv.weight
        if attention.lstm is not None:
            for suffix, param in attention.lstm.named_parameters():
                names[f"attention.location.lstm.{suffix}"] = param
        else:
            names["attention.location.projection.weight"] = attention.projection.weight
            names["attention.location.projection.bias"] = attention.projection.bias
    else:
        names["attention.coverage.weight"] = attention.projection.weight
        names["attention.coverage.bias"] = attention.projection.bias
        for part in ("memory", "query", "previous"):
            linear = getattr(attention, part)
            if linear is not None:
                names[f"attention.coverage.{part}.weight"] = linear.weight
                names[f"attention.coverage.{part}.bias"] = linear.bias
        if attention.attention is not None:
            names["attention.coverage.attention"] = attention.attention
    return names


def _multi_head_parameters(attention: MultiHeadAttention) -> dict[str, nn.Parameter]:
    names = {}
    for part, linear in (("key", attention.key), ("query", attention.query),
                         ("heads.value", attention.value), ("heads.output", attention.output)):
        if linear is not None:
            names[f"attention.{part}.weight"] = linear.weight
            names[f"attention.{part}.bias"] = linear.bias
    if attention.v is not None:
        names["attention.v"] = attention.v
    for h in range(attention.heads if attention.convs is not None else 0):
        names[f"attention.heads.{h}.location.conv"] = attention.convs[h].weight
        names[f"attention.heads.{h}.location.projection.weight"] = attention.projections[h].weight
        names[f"attention.heads.{h}.location.projection.bias"] = attention.projections[h].bias
    return names
