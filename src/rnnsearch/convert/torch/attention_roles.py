"""The roles of the attention options and of encoder pooling for `--from torch`
(docs/convert-torch.md, "Attention types and pooling"): the context gate, key/value
projections (separate, or Sockeye's one projection split into keys and values), local-p's
position layer, the monotonic energy's gain and bias, MoChA's chunk energy, and
self-attentive pooling.

converter.py calls split_key_value before the score function's roles and option_tensors
after them; both fill T (tensor name -> array) from the state_dict reader `w` and the role
mapping `m`, with converter.py's `linear` to copy an nn.Linear."""
from __future__ import annotations

import numpy as np

from ...errors import ModelError

ROLES = ("attention.gate", "attention.value", "attention.key_value", "attention.position",
         "attention.position.v", "attention.energy_gain", "attention.energy_bias",
         "attention.chunk.query", "attention.chunk.key", "attention.chunk.v",
         "encoder.pooling.projection", "encoder.pooling.query")


def vector(w, name: str, role: str, size: int | None = None):
    """An nn.Linear(size, 1) (weight, bias or None) or a parameter of `size` values (bias
    None); size None: checked later with the other tensors' shapes."""
    weight = w.sd.get(f"{name}.weight")
    if weight is not None:
        w.used.add(f"{name}.weight")
        bias = w.get(f"{name}.bias", role, optional=True)
    else:
        weight, bias = w.get(name, role), None
    if size is not None and weight.size != size:
        raise ModelError(f"mapping '{role}': '{name}' has {weight.size} values, expected "
                         f"{size} (an nn.Linear({size}, 1) or a parameter [{size}])")
    return weight.reshape(-1), bias


def _scalar(w, m, role: str):
    name, _ = m.spec(role)
    if name is None:
        return None
    value = w.get(name, role).reshape(-1)
    if value.size != 1:
        raise ModelError(f"mapping '{role}': '{name}' has {value.size} values, expected one")
    return value


def split_key_value(w, m, att: dict, key_rows: int, T: dict) -> None:
    """attention.key_value: one nn.Linear whose first key_rows outputs are the keys and
    the rest the values (Sockeye's split projection) -> attention.key and attention.value."""
    name, _ = m.spec("attention.key_value")
    if name is None:
        return
    kv = att["key_value"] or {}
    if kv.get("value_size") is None or key_rows == 0:
        raise ModelError("mapping 'attention.key_value' needs a key projection (general, or "
                         "additive with key_projection) and attention.key_value.value_size")
    weight = w.get(f"{name}.weight", "attention.key_value")
    bias = w.get(f"{name}.bias", "attention.key_value", optional=True)
    if weight.shape[0] != key_rows + kv["value_size"]:
        raise ModelError(f"mapping 'attention.key_value': '{name}' has {weight.shape[0]} "
                         f"outputs, expected keys + values = {key_rows} + {kv['value_size']}")
    for part, rows in (("key", slice(0, key_rows)), ("value", slice(key_rows, None))):
        T[f"attention.{part}.weight"] = weight[rows]
        if bias is not None:
            T[f"attention.{part}.bias"] = bias[rows]


def option_tensors(w, m, cfg: dict, v_bias, T: dict, linear) -> None:
    """Every option role the config asks for. v_bias: the bias of an nn.Linear(A, 1) given
    as attention.v, which shifts a monotonic energy (so it joins r)."""
    att = cfg["attention"]
    if att is not None:
        _attention(w, m, att, v_bias, T, linear)
    pooling = cfg["encoder"]["pooling"]
    if pooling is not None:
        name, _ = m.require("encoder.pooling.projection", "encoder.pooling")
        linear(w, name, "encoder.pooling.projection", T, "encoder.pooling.projection")
        name, _ = m.require("encoder.pooling.query", "encoder.pooling")
        weight = w.sd.get(f"{name}.weight")
        if weight is not None:  # nn.Linear(size, rows, bias=False)
            w.used.add(f"{name}.weight")
            if w.get(f"{name}.bias", "encoder.pooling.query", optional=True) is not None:
                raise ModelError("mapping 'encoder.pooling.query': a bias would shift every "
                                 "score of a row equally; give the module without one")
        else:  # a parameter: HAN's context vector u_w [size], or W_s2 [rows, size]
            weight = w.get(name, "encoder.pooling.query")
        T["encoder.pooling.query.weight"] = weight.reshape(pooling["rows"], -1) \
            if weight.size == pooling["rows"] * pooling["size"] else weight


def _attention(w, m, att, v_bias, T, linear):
    if att["gate"]:
        name, _ = m.require("attention.gate", "attention.gate")
        linear(w, name, "attention.gate", T, "attention.gate")
    kv = att["key_value"] or {}
    if kv.get("value_size") is not None and "attention.value.weight" not in T:
        name, _ = m.require("attention.value", "attention.key_value.value_size")
        linear(w, name, "attention.value", T, "attention.value")
    local = att["local"]
    if local is not None and local["mode"] == "predictive":
        name, _ = m.require("attention.position", "local attention, mode 'predictive'")
        linear(w, name, "attention.position", T, "attention.position")
        name, _ = m.require("attention.position.v", "local attention, mode 'predictive'")
        T["attention.position.v"], bias = vector(w, name, "attention.position.v",
                                                 local["position_size"])
        if bias is not None:
            T["attention.position.v_bias"] = bias.reshape(1)
    if att["type"] in ("monotonic", "mocha"):
        gain = _scalar(w, m, "attention.energy_gain")
        if gain is not None:
            if att["score"] != "additive":
                raise ModelError("mapping 'attention.energy_gain' needs additive scores")
            T["attention.energy_gain"] = gain
        r = _scalar(w, m, "attention.energy_bias")
        if v_bias is not None:  # an nn.Linear(A, 1) as v: its bias is part of r
            r = v_bias.reshape(1) + (0 if r is None else r)
        if r is not None:
            T["attention.energy_bias"] = np.asarray(r, np.float32)
    if att["type"] == "mocha":
        for part in ("query", "key"):
            name, _ = m.require(f"attention.chunk.{part}", "mocha")
            linear(w, name, f"attention.chunk.{part}", T, f"attention.chunk.{part}")
        name, _ = m.require("attention.chunk.v", "mocha")
        # the bias of an nn.Linear(A, 1) shifts every chunk energy equally: dropped
        T["attention.chunk.v"], _ = vector(w, name, "attention.chunk.v", att["mocha"]["size"])
