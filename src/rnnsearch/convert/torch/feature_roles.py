"""Roles of `convert --from torch` for models over feature sources and for Show, Attend and
Tell's deep output (docs/convert-torch.md, "Feature sources"):

  encoder.input_projection  nn.Linear over the frames (features models)
  encoder.projection        a list of nn.Linear, one after each encoder layer (ESPnet's
                            RNNP: bt0, bt1, ...)
  decoder.readout           also {"sum": {"state": M_h, "context": M_z, "embedding": M_y}}:
                            the readout is the sum of one nn.Linear per part (Xu et al.
                            2015, eq. 7: L_h h + L_z z + E y, with "identity" for a part
                            added as it is); the parts' biases add up

A features model has no encoder.embedding; an encoder of 0 layers no encoder.rnn.
"""
from __future__ import annotations

import numpy as np

from ...errors import ModelError

ROLES = ("encoder.input_projection", "encoder.projection")
IDENTITY = "identity"


def source_tensors(w, m, cfg: dict, T: dict, linear) -> None:
    """The source stage's tensors: the embedding (ids, one_hot) or the frames' input
    projection, and the per-layer projections."""
    enc = cfg["encoder"]
    if cfg["source"]["kind"] != "features":
        module, _ = m.require("encoder.embedding", "always needed for token sources")
        T["encoder.embedding.weight"] = w.get(f"{module}.weight", "encoder.embedding")
    elif enc["input_projection"] is not None:
        module, _ = m.require("encoder.input_projection", "encoder.input_projection")
        linear(w, module, "encoder.input_projection", T, "encoder.input_projection")
    if enc["projection"] is not None:
        modules, _ = m.require("encoder.projection", "encoder.projection")
        if not isinstance(modules, list) or len(modules) != enc["num_layers"]:
            raise ModelError(f"mapping 'encoder.projection': expected a list of "
                             f"{enc['num_layers']} modules (one after each layer), got "
                             f"{modules!r}")
        for layer, module in enumerate(modules):
            linear(w, module, "encoder.projection", T, f"encoder.layers.{layer}.projection")


def is_summed(value) -> bool:
    return isinstance(value, dict) and "sum" in value


def summed_readout(w, value, inputs: list, parts: dict, size: int, T: dict) -> None:
    """decoder.readout from one module per part: weight [R, sum of the inputs' widths],
    bias the sum of the parts' biases."""
    given = value["sum"]
    if set(value) != {"sum"} or not isinstance(given, dict) or not given:
        raise ModelError("mapping 'decoder.readout': expected {\"sum\": {part: module, ...}}")
    unknown = set(given) - set(inputs)
    if unknown:
        raise ModelError(f"mapping 'decoder.readout': part(s) {sorted(unknown)} are not in "
                         f"decoder.readout_inputs {inputs}")
    blocks, bias = [], np.zeros(size, np.float32)
    for part in inputs:
        module = given.get(part)
        if module == IDENTITY:
            if parts[part] != size:
                raise ModelError(f"mapping 'decoder.readout': '{part}' is added as it is, "
                                 f"so its width ({parts[part]}) must equal "
                                 f"decoder.readout_size ({size})")
            blocks.append(np.eye(size, dtype=np.float32))
            continue
        if module is None:
            blocks.append(np.zeros((size, parts[part]), np.float32))
            continue
        weight = w.get(f"{module}.weight", "decoder.readout")
        if weight.shape != (size, parts[part]):
            raise ModelError(f"mapping 'decoder.readout': {module}.weight has shape "
                             f"{list(weight.shape)}; the '{part}' part needs "
                             f"{[size, parts[part]]}")
        blocks.append(weight)
        part_bias = w.get(f"{module}.bias", "decoder.readout", optional=True)
        if part_bias is not None:
            bias = bias + part_bias
    T["decoder.readout.weight"] = np.hstack(blocks)
    T["decoder.readout.bias"] = bias


def summed_modules(value) -> list:
    return [v for v in value["sum"].values() if v != IDENTITY]
