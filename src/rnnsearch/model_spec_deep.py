"""The schema's parts for Nematus- and Marian-style recurrent models: layer normalisation
(GRU gates, attention, bridge, readout), deep transition (several GRU cells per layer and
step), separate or alternating bidirectional stacks, and the conditional GRU decoder
(docs/model-format.md). model_spec.py holds the keys and their defaults; this module checks
how they combine and lists the tensors they add, as (shape, optional) pairs.
"""
from __future__ import annotations

import math

from .errors import ModelError

STACKINGS = ("layerwise", "separate", "alternating")
MAX_CELL_DEPTH = 16
LAYER_NORMS = ("none", "joint", "split")
START_EMBEDDINGS = ("bos", "zeros")
EPSILONS = (("encoder", "layer_norm_eps"), ("decoder", "layer_norm_eps"),
            ("decoder", "readout_layer_norm_eps"), ("bridge", "layer_norm_eps"),
            ("attention", "layer_norm_eps"))


def check(config: dict) -> None:
    """ModelError naming the field when these keys do not fit the rest of the config."""
    for section, key in EPSILONS:
        if config.get(section) is None:
            continue
        value = config[section][key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value) or value <= 0:
            raise ModelError(f"config.json: {section}.{key} = {value!r}; expected a positive "
                             "number")
        config[section][key] = float(value)
    enc, dec, att, bridge = (config["encoder"], config["decoder"], config["attention"],
                             config["bridge"])
    for section, key in (("encoder", "cell_depth"), ("decoder", "cell_depth"),
                         ("decoder", "base_cell_depth")):
        if config[section][key] > MAX_CELL_DEPTH:
            raise ModelError(f"config.json: {section}.{key} = {config[section][key]}; at most "
                             f"{MAX_CELL_DEPTH} cells per layer")
    for name, section in (("encoder", enc), ("decoder", dec)):
        deep = section["cell_depth"] > 1 or section["layer_norm"] != "none" or (
            name == "decoder" and dec["type"] == "conditional")
        if deep and (section["cell"] != "gru" or not section["gru_reset_after"]):
            raise ModelError(f"config.json: {name}.cell_depth > 1, {name}.layer_norm and the "
                             "conditional decoder need cell 'gru' with gru_reset_after true, "
                             f"got {section['cell']!r}")
    if enc["stacking"] != "layerwise" and not (enc["bidirectional"] and enc["merge"] == "concat"):
        raise ModelError(f"config.json: encoder.stacking = {enc['stacking']!r} needs a "
                         "bidirectional encoder with merge 'concat'")
    if dec["type"] == "conditional" and dec["input_feeding"]:
        raise ModelError("config.json: decoder.input_feeding is for luong decoders")
    if dec["readout_layer_norm"] and (dec["type"] not in ("bahdanau", "conditional")
                                      or dec["readout"] == "none"):
        raise ModelError("config.json: decoder.readout_layer_norm needs a bahdanau or "
                         "conditional decoder with a readout layer")
    if att is not None and att["layer_norm"] and not (
            att["score"] == "additive" and att["key_projection"] and att["query_projection"]):
        raise ModelError("config.json: attention.layer_norm needs additive scores with key and "
                         "query projections")
    if bridge["layer_norm"] and bridge["type"] not in ("dense", "mean"):
        raise ModelError("config.json: bridge.layer_norm needs bridge.type 'dense' or 'mean'")


def _norm(prefix: str, width: int) -> dict:
    return {f"{prefix}.weight": ((width,), False), f"{prefix}.bias": ((width,), True)}


def _transition(prefix: str, hidden: int, layer_norm: bool) -> dict:
    """A deep transition cell: no input, a constant input part bias_ih."""
    g = 3 * hidden
    specs = {f"{prefix}.weight_hh": ((g, hidden), False), f"{prefix}.bias_ih": ((g,), True),
             f"{prefix}.bias_hh": ((g,), True)}
    if layer_norm:
        specs.update(_norm(f"{prefix}.norm_hh", g))
    return specs


def cell_tensors(prefix: str, section: dict, first_depth: int = 1) -> dict:
    """The layer normalisation of the cell `prefix` and its deep transition cells
    `prefix`.depth.{first_depth..cell_depth-1}."""
    hidden, layer_norm = section["hidden_size"], section["layer_norm"] != "none"
    specs = {}
    if layer_norm:
        specs.update(_norm(f"{prefix}.norm_ih", 3 * hidden))
        specs.update(_norm(f"{prefix}.norm_hh", 3 * hidden))
    for depth in range(first_depth, section["cell_depth"]):
        specs.update(_transition(f"{prefix}.depth.{depth}", hidden, layer_norm))
    return specs


def conditional_tensors(dec: dict, context_width: int) -> dict:
    """Layer 0 of a conditional decoder beyond its first cell (decoder.layers.0): the cell
    after the attention (depth.1, reading the context) and the transitions after it."""
    g, hidden = 3 * dec["hidden_size"], dec["hidden_size"]
    specs = {}
    if dec["base_cell_depth"] > 1:
        prefix = "decoder.layers.0.depth.1"
        specs = {f"{prefix}.weight_ih": ((g, context_width), False),
                 f"{prefix}.weight_hh": ((g, hidden), False),
                 f"{prefix}.bias_ih": ((g,), True), f"{prefix}.bias_hh": ((g,), True)}
        if dec["layer_norm"] != "none":
            specs.update(_norm(f"{prefix}.norm_ih", g))
            specs.update(_norm(f"{prefix}.norm_hh", g))
    for depth in range(2, dec["base_cell_depth"]):
        specs.update(_transition(f"decoder.layers.0.depth.{depth}", hidden,
                                 dec["layer_norm"] != "none"))
    return specs


def norm_tensors(config: dict, readout_size: int | None) -> dict:
    """The layer normalisation of the bridge, the attention and the readout."""
    dec, att, bridge = config["decoder"], config["attention"], config["bridge"]
    specs = {}
    if bridge["layer_norm"]:
        states = ["hidden"] + (["cell"] if dec["cell"] == "lstm"
                               and bridge["lstm_cell"] == "bridged" else [])
        for layer in range(dec["num_layers"]):
            for state in states:
                specs.update(_norm(f"bridge.layers.{layer}.{state}_norm", dec["hidden_size"]))
    if att is not None and att["layer_norm"]:
        specs.update(_norm("attention.key_norm", att["size"]))
        specs.update(_norm("attention.query_norm", att["size"]))
    if dec["readout_layer_norm"]:
        shape = (len(dec["readout_inputs"]), readout_size)
        specs.update({"decoder.readout_norm.weight": (shape, False),
                      "decoder.readout_norm.bias": (shape, True),
                      "decoder.readout_norm.input_bias": (shape, True)})
    return specs
