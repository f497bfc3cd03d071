"""The attention types that carry state from one decoder step to the next: their options,
checks, defaults and tensors (docs/model-format.md, "Attention that carries state":
location, coverage, forward), and the `scaling` every type applies before its softmax.

model_spec.py calls these from normalize_config and expected_tensors, after
attention_options.py's (whose helpers they share). Tensors are returned as {name: (shape, optional)}.
"""
from __future__ import annotations

import math

from .attention_options import _REQUIRED, _linear, _merge, _positive, _size_only_when
from .errors import ModelError
from .limits import MAX_WIDTH

STATEFUL_TYPES = ("location", "coverage", "forward", "multi_head")
MAX_HEADS = 16

LOCATION = {"input": "previous", "history": None, "channels": _REQUIRED,
            "kernel_size": _REQUIRED, "initial": "uniform", "recurrent": False}
COVERAGE = {"update": "sum", "size": 1, "initial": "zeros"}
FORWARD = {"transition_agent": False}
MULTI_HEAD = {"heads": _REQUIRED, "value_size": None, "kernel_sizes": None}

LOCATION_INPUTS = ("previous", "cumulative", "previous_and_cumulative", "history")
INITIAL_WEIGHTS = ("uniform", "zeros", "first")
COVERAGE_UPDATES = ("sum", "tanh", "sigmoid", "relu", "softrelu", "gru")

# the sub-objects each type takes (None for the others)
_OPTIONS_OF = {"location": {"location"}, "coverage": {"coverage"},
               "forward": {"location", "forward"}, "multi_head": {"multi_head", "location"}}
SUB_OBJECTS = ("location", "coverage", "forward", "multi_head")


def _choice(where: str, value, choices) -> None:
    if value not in choices:
        raise ModelError(f"config.json: {where} = {value!r}; expected one of {list(choices)}")


def check_scaling(att: dict) -> None:
    value = att["scaling"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or value <= 0:
        raise ModelError(f"config.json: attention.scaling = {value!r}; expected a positive "
                         "finite number")
    att["scaling"] = float(value)


def normalize_attention(att: dict) -> None:
    """Check the stateful types' sub-objects and fill their defaults (in place); after
    attention_options.normalize_attention."""
    check_scaling(att)
    if att["type"] == "monotonic" and att["scaling"] != 1.0:
        raise ModelError("config.json: attention.scaling does not apply to attention type "
                         "'monotonic' (its one-hot choice reads the sign of the energy only)")
    for option in ("gate", "key_value", "layer_norm"):
        if att["type"] in STATEFUL_TYPES and att[option]:
            raise ModelError(f"config.json: attention.{option} is not supported with attention "
                             f"type {att['type']!r}")
    if att["type"] in STATEFUL_TYPES and att["score_activation"] != "tanh":
        # their energies are tanh's own (rs_attention_state.c, stateful reference modules)
        raise ModelError(f"config.json: attention.score_activation "
                         f"{att['score_activation']!r} is not supported with attention type "
                         f"{att['type']!r}")
    wanted = _OPTIONS_OF.get(att["type"], set())
    for name in SUB_OBJECTS:
        if name not in wanted and att[name] is not None:
            raise ModelError(f"config.json: attention.{name} does not apply to attention "
                             f"type {att['type']!r}")
    if att["score"] == "tanh_dot" and att["type"] != "multi_head":
        raise ModelError("config.json: attention.score 'tanh_dot' is for attention type "
                         "'multi_head' (one head: ESPnet's dot)")
    if att["type"] == "multi_head":
        _normalize_multi_head(att)
        return
    if att["type"] not in STATEFUL_TYPES:
        return
    if att["score"] != "additive" or not (att["query_projection"] and att["key_projection"]):
        raise ModelError(f"config.json: attention type {att['type']!r} needs score "
                         "'additive' with both projections (attention.size)")
    if att["type"] == "coverage":
        _normalize_coverage(att)
        return
    if att["type"] == "forward":
        _normalize_forward(att)
    _normalize_location(att)


def _normalize_forward(att: dict) -> None:
    """Forward attention's own options; its location features start from position 0 (the
    forward recursion's start) unless the config says otherwise, and read the previous
    weights only."""
    fwd = att["forward"] = _merge("attention.forward", att["forward"] or {}, FORWARD)
    if not isinstance(fwd["transition_agent"], bool):
        raise ModelError(f"config.json: attention.forward.transition_agent = "
                         f"{fwd['transition_agent']!r}; expected true or false")
    if isinstance(att["location"], dict):
        att["location"] = {"initial": "first", **att["location"]}
        for key, only in (("input", "previous"), ("recurrent", False)):
            if att["location"].get(key, only) != only:
                raise ModelError(f"config.json: attention.location.{key} = "
                                 f"{att['location'][key]!r}; forward attention reads the "
                                 f"previous weights only ({only!r})")


def _normalize_multi_head(att: dict) -> None:
    """ESPnet's multi-head types (and, with one head and no value projection, its dot)."""
    if att["score"] not in ("tanh_dot", "additive") or att["size"] is None or not (
            att["query_projection"] and att["key_projection"]):
        raise ModelError("config.json: attention type 'multi_head' needs score 'tanh_dot' or "
                         "'additive', both projections and attention.size (per head)")
    if att["multi_head"] is None:
        raise ModelError("config.json: attention.multi_head is required for attention type "
                         "'multi_head'")
    mh = att["multi_head"] = _merge("attention.multi_head", att["multi_head"], MULTI_HEAD)
    _positive("attention.multi_head.heads", mh["heads"])
    if mh["heads"] > MAX_HEADS:
        raise ModelError(f"config.json: attention.multi_head.heads = {mh['heads']}; at most "
                         f"{MAX_HEADS}")
    if mh["value_size"] is None:
        if mh["heads"] != 1:
            raise ModelError("config.json: attention.multi_head.value_size is required for "
                             "more than one head (the heads' values are projected)")
    else:
        _positive("attention.multi_head.value_size", mh["value_size"])
    if att["location"] is None:
        if mh["kernel_sizes"] is not None:
            raise ModelError("config.json: attention.multi_head.kernel_sizes needs "
                             "attention.location")
        return
    if att["score"] != "additive":
        raise ModelError("config.json: attention.location with 'multi_head' needs score "
                         "'additive'")
    _normalize_location(att)
    loc = att["location"]
    if loc["input"] != "previous" or loc["recurrent"]:
        raise ModelError("config.json: attention.location with 'multi_head' reads each "
                         "head's previous weights (input 'previous', not recurrent)")
    sizes = mh["kernel_sizes"]
    if sizes is None:
        mh["kernel_sizes"] = [loc["kernel_size"]] * mh["heads"]
    elif not isinstance(sizes, list) or len(sizes) != mh["heads"] or any(
            isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_WIDTH or k % 2 == 0
            for k in sizes):
        raise ModelError(f"config.json: attention.multi_head.kernel_sizes = {sizes!r}; "
                         f"expected {mh['heads']} odd positive integers of at most {MAX_WIDTH}, one per head")


def _normalize_location(att: dict) -> None:
    if att["location"] is None:
        raise ModelError(f"config.json: attention.location is required for attention type "
                         f"{att['type']!r}")
    loc = att["location"] = _merge("attention.location", att["location"], LOCATION)
    _choice("attention.location.input", loc["input"], LOCATION_INPUTS)
    _choice("attention.location.initial", loc["initial"], INITIAL_WEIGHTS)
    _positive("attention.location.channels", loc["channels"])
    _positive("attention.location.kernel_size", loc["kernel_size"])
    if loc["kernel_size"] % 2 == 0:
        raise ModelError(f"config.json: attention.location.kernel_size = {loc['kernel_size']}; "
                         "expected an odd number (the convolution is centred)")
    _size_only_when("attention.location.history", loc["history"], loc["input"] == "history",
                    "input 'history'")
    if not isinstance(loc["recurrent"], bool):
        raise ModelError(f"config.json: attention.location.recurrent = {loc['recurrent']!r}; "
                         "expected true or false")


def _normalize_coverage(att: dict) -> None:
    cov = att["coverage"] = _merge("attention.coverage", att["coverage"] or {}, COVERAGE)
    _choice("attention.coverage.update", cov["update"], COVERAGE_UPDATES)
    _positive("attention.coverage.size", cov["size"])
    _choice("attention.coverage.initial", cov["initial"], ("uniform", "zeros"))
    if cov["update"] == "sum" and cov["size"] != 1:
        raise ModelError(f"config.json: attention.coverage.size = {cov['size']}; the 'sum' "
                         "update keeps one number per position (size 1)")
    if cov["update"] != "sum" and cov["initial"] != "zeros":
        raise ModelError("config.json: attention.coverage.initial applies to the 'sum' update "
                         "only (learned coverage starts at zeros)")


def location_inputs(loc: dict) -> int:
    """N_in: how many weight vectors the location convolution reads."""
    return {"previous": 1, "cumulative": 1, "previous_and_cumulative": 2}.get(
        loc["input"], loc["history"])


def attention_tensors(att: dict, query_width: int, memory_width: int,
                      embedding_width: int) -> dict:
    """The stateful types' tensors beyond the additive score's (key, query, v)."""
    specs = {}
    A = att["size"]
    if att["type"] == "multi_head":
        return _multi_head_tensors(att, query_width, memory_width)
    if att["type"] in ("location", "forward"):
        loc = att["location"]
        C = loc["channels"]
        specs["attention.location.conv"] = ((C, location_inputs(loc), loc["kernel_size"]),
                                            False)
        if loc["recurrent"]:
            for part, width in (("ih", C), ("hh", A)):
                specs[f"attention.location.lstm.weight_{part}"] = ((4 * A, width), False)
                specs[f"attention.location.lstm.bias_{part}"] = ((4 * A,), True)
        else:
            specs.update(_linear("attention.location.projection", A, C))
    if att["type"] == "forward" and att["forward"]["transition_agent"]:
        specs.update(_linear("attention.forward.transition", 1,
                             memory_width + embedding_width + query_width))
    if att["type"] == "coverage":
        cov = att["coverage"]
        N = cov["size"]
        specs.update(_linear("attention.coverage", A, N))
        if cov["update"] != "sum":
            G = (3 if cov["update"] == "gru" else 1) * N
            specs.update(_linear("attention.coverage.memory", G, memory_width))
            specs.update(_linear("attention.coverage.query", G, query_width))
            specs.update(_linear("attention.coverage.previous", G, N))
            specs["attention.coverage.attention"] = ((G,), False)
    return specs


def _multi_head_tensors(att: dict, query_width: int, memory_width: int) -> dict:
    """Every head's projections stacked (head h: rows [h d, (h + 1) d)); they replace the
    additive score's one-head shapes."""
    mh, H, dk = att["multi_head"], att["multi_head"]["heads"], att["size"]
    specs = {**_linear("attention.key", H * dk, memory_width),
             **_linear("attention.query", H * dk, query_width)}
    if att["score"] == "additive":
        specs["attention.v"] = ((H * dk,), True)
    if mh["value_size"] is not None:
        specs.update(_linear("attention.heads.value", H * mh["value_size"], memory_width))
        specs.update(_linear("attention.heads.output", memory_width, H * mh["value_size"]))
    if att["location"] is not None:
        C = att["location"]["channels"]
        for h, k in enumerate(mh["kernel_sizes"]):
            specs[f"attention.heads.{h}.location.conv"] = ((C, 1, k), False)
            specs.update(_linear(f"attention.heads.{h}.location.projection", dk, C))
    return specs
