"""The attention and pooling options beyond global attention's score functions: their
checks, defaults, widths and tensors (docs/model-format.md, "attention" and "pooling").

model_spec.py calls these from normalize_config and expected_tensors; this module imports
nothing above errors.py and limits.py. Tensors are returned as {name: (shape, optional)}.
Every size is bounded by the engine's limits (docs/security.md, "Limits").
"""
from __future__ import annotations

from .config_merge import REQUIRED as _REQUIRED
from .config_merge import merge_over_defaults
from .config_merge import short as _short
from .errors import ModelError
from .limits import MAX_POOLED_WIDTH, MAX_WIDTH

# attention.<type> sub-objects, and the other option objects, with their defaults
LOCAL = {"mode": "predictive", "window": _REQUIRED, "gaussian": None, "center": "floor",
         "edges": "clip", "position_size": None}
MOCHA = {"chunk_size": _REQUIRED, "size": _REQUIRED}
KEY_VALUE = {"split": None, "value_size": None}
POOLING = {"rows": 1, "size": _REQUIRED}

_CHOICES = {("local", "mode"): ("monotonic", "predictive"),
            ("local", "center"): ("floor", "round"),
            ("local", "edges"): ("clip", "zero_pad")}
# the types each option object belongs to
_TYPE_OF = {"local": ("local",), "mocha": ("mocha",)}
_HARD_TYPES = ("global", "local")


def _positive(where: str, value, minimum: int = 1, maximum: int = MAX_WIDTH) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ModelError(f"config.json: {where} = {_short(value)}; expected {kind} of at most "
                         f"{maximum}")


def _size_only_when(where: str, value, wanted: bool, condition: str) -> None:
    """A positive size required under `condition` and refused otherwise."""
    if wanted:
        if value is None:
            raise ModelError(f"config.json: {where} is required for {condition}")
        _positive(where, value)
    elif value is not None:
        raise ModelError(f"config.json: {where} applies to {condition} only")


def _merge(where: str, given, defaults: dict) -> dict:
    if not isinstance(given, dict):
        raise ModelError(f"config.json: {where} = {_short(given)}; expected an object")
    object_name = where.rsplit(".", 1)[-1]

    def check_choice(key, value):
        choices = _CHOICES.get((object_name, key))
        if choices and value not in choices:
            raise ModelError(f"config.json: {where}.{key} = {_short(value)}; expected one of "
                             f"{list(choices)}")

    return merge_over_defaults(where, given, defaults, check_choice)


# shared with source_options.py, whose option objects merge over their defaults the same way
REQUIRED = _REQUIRED
merge_object = _merge


def normalize_attention(att: dict, memory_width: int, max_length: int) -> None:
    """Check the options of the attention section in place, filling the defaults of the
    sub-objects; ModelError naming the field on any fault."""
    kind = att["type"]
    for option, types in _TYPE_OF.items():
        if att[option] is not None and kind not in types:
            raise ModelError(f"config.json: attention.{option} applies to attention.type "
                             f"{' or '.join(repr(t) for t in types)} only, not {kind!r}")
        if att[option] is None and kind in types:
            raise ModelError(f"config.json: attention.type {kind!r} needs an "
                             f"attention.{option} object")
    if att["gate_per_dimension"] and not att["gate"]:
        raise ModelError("config.json: attention.gate_per_dimension needs attention.gate")
    if att["hard"] and kind not in _HARD_TYPES:
        why = "is already hard" if kind in ("monotonic", "mocha") else "does not take it"
        raise ModelError(f"config.json: attention.hard applies to types {list(_HARD_TYPES)}; "
                         f"{kind!r} attention {why}")
    if kind == "local":
        local = att["local"] = _merge("attention.local", att["local"], LOCAL)
        _positive("attention.local.window", local["window"], 0)
        if local["window"] > max_length:
            raise ModelError(f"config.json: attention.local.window = {local['window']} is "
                             f"larger than source.max_length ({max_length})")
        if local["gaussian"] is None:  # Luong et al. 2015: local-p only
            local["gaussian"] = local["mode"] == "predictive"
        if not isinstance(local["gaussian"], bool):
            raise ModelError(f"config.json: attention.local.gaussian = {_short(local['gaussian'])}; "
                             "expected true or false")
        if local["gaussian"] and local["window"] == 0:
            raise ModelError("config.json: attention.local.window must be >= 1 with the "
                             "Gaussian (sigma = window / 2)")
        _size_only_when("attention.local.position_size", local["position_size"],
                        local["mode"] == "predictive", "mode 'predictive'")
    if kind == "mocha":
        mocha = att["mocha"] = _merge("attention.mocha", att["mocha"], MOCHA)
        _positive("attention.mocha.chunk_size", mocha["chunk_size"])
        _positive("attention.mocha.size", mocha["size"])
        if mocha["chunk_size"] > max_length:
            raise ModelError(f"config.json: attention.mocha.chunk_size = "
                             f"{mocha['chunk_size']} is larger than source.max_length "
                             f"({max_length})")
    if att["key_value"] is not None:
        kv = att["key_value"] = _merge("attention.key_value", att["key_value"], KEY_VALUE)
        if kv["split"] is None and kv["value_size"] is None:
            raise ModelError("config.json: attention.key_value needs split, value_size or both")
        if kv["split"] is not None:
            _positive("attention.key_value.split", kv["split"])
            if kv["split"] >= memory_width:
                raise ModelError(f"config.json: attention.key_value.split = {kv['split']} "
                                 f"leaves no value part of the memory (width {memory_width})")
        if kv["value_size"] is not None:
            _positive("attention.key_value.value_size", kv["value_size"])


def normalize_pooling(encoder: dict, memory_width: int) -> None:
    if encoder["pooling"] is None:
        return
    pooling = encoder["pooling"] = _merge("encoder.pooling", encoder["pooling"], POOLING)
    _positive("encoder.pooling.rows", pooling["rows"])
    _positive("encoder.pooling.size", pooling["size"])
    if pooling["rows"] * memory_width > MAX_POOLED_WIDTH:
        raise ModelError(f"config.json: encoder.pooling.rows = {pooling['rows']} times the "
                         f"memory width ({memory_width}) is more than {MAX_POOLED_WIDTH} "
                         "floats per sentence")


def key_input_width(att: dict | None, memory_width: int) -> int:
    """What the scores read of a memory position: its key part, or all of it."""
    kv = att and att["key_value"]
    return kv["split"] if kv and kv["split"] is not None else memory_width


def value_input_width(att: dict | None, memory_width: int) -> int:
    kv = att and att["key_value"]
    return memory_width - kv["split"] if kv and kv["split"] is not None else memory_width


def context_width(att: dict | None, memory_width: int) -> int:
    """D_c, what the decoder receives: the values' width."""
    kv = att and att["key_value"]
    if kv and kv["value_size"] is not None:
        return kv["value_size"]
    return value_input_width(att, memory_width)


def pooled_width(encoder: dict, memory_width: int) -> int:
    pooling = encoder["pooling"]
    return pooling["rows"] * memory_width if pooling else 0


def _linear(prefix: str, out: int, inp: int) -> dict:
    return {f"{prefix}.weight": ((out, inp), False), f"{prefix}.bias": ((out,), True)}


def attention_tensors(att: dict, query_width: int, memory_width: int) -> dict:
    """The tensors of the options (beyond the score function's)."""
    specs = {}
    key_width = key_input_width(att, memory_width)
    if att["gate"]:
        rows = context_width(att, memory_width) if att["gate_per_dimension"] else 1
        specs.update(_linear("attention.gate", rows, query_width))
    if att["key_value"] and att["key_value"]["value_size"] is not None:
        specs.update(_linear("attention.value", att["key_value"]["value_size"],
                             value_input_width(att, memory_width)))
    if att["type"] == "local" and att["local"]["mode"] == "predictive":
        size = att["local"]["position_size"]
        specs.update(_linear("attention.position", size, query_width))
        specs["attention.position.v"] = ((size,), False)
        specs["attention.position.v_bias"] = ((1,), True)
    if att["type"] in ("monotonic", "mocha"):
        specs["attention.energy_bias"] = ((1,), True)
        if att["score"] == "additive":
            specs["attention.energy_gain"] = ((1,), True)
    if att["type"] == "mocha":
        size = att["mocha"]["size"]
        specs.update(_linear("attention.chunk.query", size, query_width))
        specs.update(_linear("attention.chunk.key", size, key_width))
        specs["attention.chunk.v"] = ((size,), False)
    return specs


def pooling_tensors(encoder: dict, memory_width: int) -> dict:
    pooling = encoder["pooling"]
    if not pooling:
        return {}
    specs = _linear("encoder.pooling.projection", pooling["size"], memory_width)
    specs["encoder.pooling.query.weight"] = ((pooling["rows"], pooling["size"]), False)
    return specs
