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
         "attention.coverage.attention")


def _conv_weight(w, m, shape: tuple) -> np.ndarray:
    """A Conv1d weight [C, N_in, k], or a Conv2d one [C, 1, N_in, k] (ESPnet's AttLoc,
    1 x k kernels, and AttLoc2D, N x k kernels over the last N weight vectors)."""
    name, _ = m.require("attention.location.conv", "location-aware attention")
    weight = w.get(f"{name}.weight", "attention.location.conv")
    if weight.ndim == 4 and weight.shape[1] == 1:
        weight = weight.reshape(weight.shape[0], weight.shape[2], weight.shape[3])
    if tuple(weight.shape) != shape:
        raise ModelError(f"mapping 'attention.location.conv': the convolution's weight has "
                         f"shape {list(weight.shape)}; the config asks for {list(shape)} "
                         "(channels, inputs, kernel_size)")
    if w.get(f"{name}.bias", "attention.location.conv", optional=True) is not None:
        raise ModelError("mapping 'attention.location.conv': the convolution has a bias, "
                         "which location-aware attention does not have")
    return np.ascontiguousarray(weight)


def _linear(w, m, role: str, why: str, out: dict, prefix: str) -> None:
    name, _ = m.require(role, why)
    out[f"{prefix}.weight"] = w.get(f"{name}.weight", role)
    bias = w.get(f"{name}.bias", role, optional=True)
    if bias is not None:
        out[f"{prefix}.bias"] = bias


def stateful_tensors(w, m, att: dict, out: dict) -> None:
    """Fill `out` with the stateful type's own tensors (key, query and v are the additive
    score's roles, read by the caller)."""
    from ...stateful_attention import location_inputs
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
