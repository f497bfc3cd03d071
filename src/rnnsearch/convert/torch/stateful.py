"""The state_dict roles of the stateful attention types (docs/convert-torch.md, "Roles"):
location-aware (and forward) attention's convolution, its projection or LSTM cell, forward
attention's transition agent, and coverage's weights. converter.py calls stateful_tensors with its weight reader and role mapping."""
from __future__ import annotations

import numpy as np

from ...errors import ModelError

ROLES = ("attention.location.conv", "attention.location.projection",
         "attention.location.lstm", "attention.forward.transition",
         "attention.coverage", "attention.coverage.memory",
         "attention.coverage.query", "attention.coverage.previous",
         "attention.coverage.attention", "attention.heads.value", "attention.heads.output",
         "attention.heads.location.conv", "attention.heads.location.projection",
         "attention.context")


def _conv_shape(weight: np.ndarray, shape: tuple, role: str) -> np.ndarray:
    """A Conv1d weight [C, N_in, k], or a Conv2d one [C, 1, N_in, k] (ESPnet's AttLoc,
    1 x k kernels, and AttLoc2D, N x k kernels over the last N weight vectors)."""
    if weight.ndim == 4 and weight.shape[1] == 1:
        weight = weight.reshape(weight.shape[0], weight.shape[2], weight.shape[3])
    if tuple(weight.shape) != shape:
        raise ModelError(f"mapping '{role}': the convolution's weight has shape "
                         f"{list(weight.shape)}; the config asks for {list(shape)} "
                         "(channels, inputs, kernel_size)")
    return np.ascontiguousarray(weight)


def _conv_weight(w, m, shape: tuple) -> np.ndarray:
    name, _ = m.require("attention.location.conv", "location-aware attention")
    weight = _conv_shape(w.get(f"{name}.weight", "attention.location.conv"), shape,
                         "attention.location.conv")
    if w.get(f"{name}.bias", "attention.location.conv", optional=True) is not None:
        raise ModelError("mapping 'attention.location.conv': the convolution has a bias, "
                         "which location-aware attention does not have")
    return weight


def _linear(w, m, role: str, why: str, out: dict, prefix: str) -> None:
    name, _ = m.require(role, why)
    out[f"{prefix}.weight"] = w.get(f"{name}.weight", role)
    bias = w.get(f"{name}.bias", role, optional=True)
    if bias is not None:
        out[f"{prefix}.bias"] = bias


def _per_head(m, role: str, heads: int, why: str) -> list:
    """A role's modules, one per head (a single name for one head)."""
    names, _ = m.require(role, why)
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or len(names) != heads:
        raise ModelError(f"mapping '{role}': expected {heads} module name(s), one per head "
                         f"(ESPnet's ModuleLists: mlp_q.0, mlp_q.1, ...), got {names!r}")
    return names


def _stacked(w, m, role: str, heads: int, why: str, out: dict, prefix: str) -> None:
    """Per-head nn.Linear modules stacked by rows, head 0 first."""
    weights, biases = [], []
    for name in _per_head(m, role, heads, why):
        weights.append(w.get(f"{name}.weight", role))
        biases.append(w.get(f"{name}.bias", role, optional=True))
    out[f"{prefix}.weight"] = np.concatenate(weights)
    if any(b is not None for b in biases):
        out[f"{prefix}.bias"] = np.concatenate([
            b if b is not None else np.zeros(len(x), np.float32) for b, x in zip(biases, weights)])


def _multi_head_tensors(w, m, att: dict, out: dict) -> None:
    mh, H = att["multi_head"], att["multi_head"]["heads"]
    why = "multi-head attention"
    _stacked(w, m, "attention.key", H, why, out, "attention.key")
    _stacked(w, m, "attention.query", H, why, out, "attention.query")
    if att["score"] == "additive":
        v = []
        for name in _per_head(m, "attention.v", H, why):
            value = w.sd.get(f"{name}.weight")
            if value is not None:  # nn.Linear(d_k, 1): its bias shifts a head's scores equally
                w.used.update({f"{name}.weight", f"{name}.bias"})
            else:
                value = w.get(name, "attention.v")
            v.append(value.reshape(-1))
        out["attention.v"] = np.concatenate(v)
    if mh["value_size"] is not None:
        _stacked(w, m, "attention.heads.value", H, why, out, "attention.heads.value")
        _linear(w, m, "attention.heads.output", why, out, "attention.heads.output")
    if att["location"] is not None:
        C = att["location"]["channels"]
        convs = _per_head(m, "attention.heads.location.conv", H, why)
        projections = _per_head(m, "attention.heads.location.projection", H, why)
        for h, (conv, projection, k) in enumerate(zip(convs, projections, mh["kernel_sizes"])):
            weight = w.get(f"{conv}.weight", "attention.heads.location.conv")
            out[f"attention.heads.{h}.location.conv"] = _conv_shape(
                weight, (C, 1, k), "attention.heads.location.conv")
            out[f"attention.heads.{h}.location.projection.weight"] = w.get(
                f"{projection}.weight", "attention.heads.location.projection")
            bias = w.get(f"{projection}.bias", "attention.heads.location.projection",
                         optional=True)
            if bias is not None:
                out[f"attention.heads.{h}.location.projection.bias"] = bias


def stateful_tensors(w, m, att: dict, out: dict) -> None:
    """Fill `out` with the stateful type's own tensors (key, query and v are the additive
    score's roles, read by the caller, but for multi_head)."""
    from ...stateful_attention import location_inputs
    if att["context_size"] is not None:
        _linear(w, m, "attention.context", "attention.context_size (a projected context, "
                "SpeechBrain's mlp_out)", out, "attention.context")
    if att["type"] == "multi_head":
        _multi_head_tensors(w, m, att, out)
        return
    if att["type"] in ("location", "forward"):
        loc = att["location"]
        shape = (loc["channels"], location_inputs(loc), loc["kernel_size"])
        out["attention.location.conv"] = _conv_weight(w, m, shape)
        if loc["recurrent"]:
            name, _ = m.require("attention.location.lstm", "recurrent location attention")
            for part in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                value = w.get(f"{name}.{part}", "attention.location.lstm",
                              optional=part.startswith("bias"))
                if value is not None:
                    out[f"attention.location.lstm.{part}"] = value
        else:
            _linear(w, m, "attention.location.projection", "location-aware attention", out,
                    "attention.location.projection")
    if att["type"] == "forward" and att["forward"]["transition_agent"]:
        _linear(w, m, "attention.forward.transition", "forward attention's transition agent "
                "(ESPnet's mlp_ta, over [context; previous output; query])", out,
                "attention.forward.transition")
    if att["type"] == "coverage":
        _linear(w, m, "attention.coverage", "coverage attention (W_c, e.g. ESPnet's wvec)",
                out, "attention.coverage")
        if att["coverage"]["update"] != "sum":
            why = f"coverage update '{att['coverage']['update']}'"
            for part in ("memory", "query", "previous"):
                _linear(w, m, f"attention.coverage.{part}", why, out,
                        f"attention.coverage.{part}")
            name, _ = m.require("attention.coverage.attention", why)
            value = w.sd.get(f"{name}.weight")
            if value is not None:  # an nn.Linear(1, G N_c, bias=False)
                w.used.add(f"{name}.weight")
            else:
                value = w.get(name, "attention.coverage.attention")
            out["attention.coverage.attention"] = value.reshape(-1)
