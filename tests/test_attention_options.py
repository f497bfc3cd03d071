"""Bad attention and pooling configurations and tensors are refused with a ModelError
naming the field (docs/model-format.md, "attention", "pooling"); good ones load and
decode."""
import copy

import numpy as np
import pytest

import rnnsearch
from rnnsearch.errors import ModelError
from rnnsearch.model_dir import write_model_dir
from rnnsearch.model_spec import expected_tensors, normalize_config
from rnnsearch.random_model import random_tensors, vocabularies, write_random_model

BASE = {
    "format": "rnnsearch-model", "format_version": 1,
    "source": {"max_length": 50},
    "encoder": {"embedding_size": 4, "cell": "gru", "hidden_size": 5, "bidirectional": True},
    "attention": {"type": "local", "score": "general",
                  "local": {"mode": "predictive", "window": 3, "position_size": 4}},
    "decoder": {"type": "luong", "embedding_size": 4, "cell": "gru", "hidden_size": 10},
}


def _with(path, value, base=BASE):
    config = copy.deepcopy(base)
    *parents, key = path.split(".")
    section = config
    for name in parents:
        section = section.setdefault(name, {})
    if value is None:
        section.pop(key)
    else:
        section[key] = value
    return config


@pytest.mark.parametrize("path, value, message", [
    ("attention.type", "nearby", "attention.type"),
    ("attention.local.window", -1, "attention.local.window"),
    ("attention.local.window", 51, "larger than source.max_length"),
    ("attention.local.window", 2.5, "attention.local.window"),
    ("attention.local.window", 0, "window must be >= 1 with the Gaussian"),
    ("attention.local.window", None, "attention.local.window is required"),
    ("attention.local.mode", "predicted", "attention.local.mode"),
    ("attention.local.edges", "wrap", "attention.local.edges"),
    ("attention.local.center", "ceil", "attention.local.center"),
    ("attention.local.gaussian", "yes", "attention.local.gaussian"),
    ("attention.local.position_size", None, "attention.local.position_size is required"),
    ("attention.local.position_size", 0, "attention.local.position_size"),
    ("attention.local.spread", 2, "unknown key"),
    ("attention.local", [3], "attention.local"),
    ("attention.local", None, "needs an attention.local"),
    ("attention.mocha", {"chunk_size": 2, "size": 3}, "attention.mocha applies"),
    ("attention.hard", "true", "attention.hard"),
    ("attention.gate", 1, "attention.gate"),
    ("attention.key_value", {}, "needs split, value_size or both"),
    ("attention.key_value", {"split": 10}, "leaves no value part"),
    ("attention.key_value", {"split": 0}, "attention.key_value.split"),
    ("attention.key_value", {"value_size": -2}, "attention.key_value.value_size"),
    ("attention.key_value", {"values": 3}, "unknown key"),
    ("encoder.pooling", {"rows": 0, "size": 3}, "encoder.pooling.rows"),
    ("encoder.pooling", {"rows": 2}, "encoder.pooling.size is required"),
    ("encoder.pooling", {"rows": 1, "size": -3}, "encoder.pooling.size"),
    ("encoder.pooling", 4, "encoder.pooling"),
    ("bridge", {"type": "pooling"}, "needs encoder.pooling"),
])
def test_bad_configs_name_the_field(path, value, message):
    with pytest.raises(ModelError, match=message.replace(".", r"\.")):
        normalize_config(_with(path, value))


@pytest.mark.parametrize("attention, message", [
    ({"type": "monotonic", "score": "general", "hard": True}, "already hard"),
    ({"type": "mocha", "score": "general"}, "needs an attention.mocha"),
    ({"type": "mocha", "score": "general", "mocha": {"chunk_size": 0, "size": 3}},
     "attention.mocha.chunk_size"),
    ({"type": "mocha", "score": "general", "mocha": {"chunk_size": 60, "size": 3}},
     "larger than source.max_length"),
    ({"type": "global", "score": "dot", "key_value": {"split": 4}},
     "needs the memory \\(key\\) width"),
    ({"type": "local", "score": "dot", "local": {"mode": "monotonic", "window": 2,
                                                 "position_size": 3}},
     "position_size applies to mode 'predictive' only"),
])
def test_bad_attention_sections(attention, message):
    with pytest.raises(ModelError, match=message):
        normalize_config(_with("attention", attention))


def test_defaults_are_filled():
    config = normalize_config(BASE)
    assert config["attention"]["local"] == {"mode": "predictive", "window": 3,
                                            "gaussian": True, "center": "floor",
                                            "edges": "clip", "position_size": 4}
    local_m = normalize_config(_with("attention.local", {"mode": "monotonic", "window": 0}))
    assert local_m["attention"]["local"]["gaussian"] is False


CONFIGS = {
    "local": BASE,
    "mocha-key-value": _with("attention", {"type": "mocha", "score": "additive", "size": 6,
                                           "gate": True, "mocha": {"chunk_size": 2, "size": 3},
                                           "key_value": {"split": 4, "value_size": 7}}),
    "pooling": _with("bridge", {"type": "pooling"},
                     _with("encoder.pooling", {"rows": 2, "size": 3})),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_missing_and_misshaped_tensors_are_refused(tmp_path, name):
    config = CONFIGS[name]
    specs = expected_tensors(normalize_config(config), 20, 20)
    tensors = random_tensors(config, 20, 20)
    src, tgt = vocabularies(20, 20)
    write_model_dir(str(tmp_path / "good"), config, tensors, src, tgt)
    translator = rnnsearch.Translator(str(tmp_path / "good"))
    assert translator.translate_batch([["s1", "s2", "s3"]], return_attention=True)
    own = [n for n in specs if n.startswith(("attention.", "encoder.pooling."))
           and not specs[n].optional]
    assert own
    for index, victim in enumerate(own):
        broken = dict(tensors)
        del broken[victim]
        with pytest.raises(ModelError, match=f"missing tensor '{victim}'"):
            write_model_dir(str(tmp_path / f"m{index}"), config, broken, src, tgt)
        broken[victim] = np.zeros(tuple(d + 1 for d in specs[victim].shape), np.float32)
        with pytest.raises(ModelError, match=f"tensor '{victim}' has shape"):
            write_model_dir(str(tmp_path / f"s{index}"), config, broken, src, tgt)


def test_unknown_engine_type_is_a_clear_error(tmp_path):
    write_random_model(str(tmp_path), BASE, 20, 20)
    from rnnsearch._engine import Engine
    from rnnsearch.model_dir import load_model_dir
    files = load_model_dir(str(tmp_path))
    config = copy.deepcopy(files.config)
    config["attention"]["type"] = "nearby"
    with pytest.raises(ValueError, match="attention type 'nearby'"):
        Engine(config, files.tensors, 2, 3)


def test_int8_models_with_options(tmp_path):
    """Quantized directories keep working: the gate and pooling vectors that the engine
    reads directly (not through a matrix kernel) are dequantized at load."""
    from rnnsearch.quantize import quantize_model_dir
    config = _with("attention.gate", True, CONFIGS["pooling"])
    write_random_model(str(tmp_path / "f"), config, 20, 20)
    quantize_model_dir(str(tmp_path / "f"), str(tmp_path / "q"))
    sentence = [["s1", "s2", "s3", "s4"]]
    for compute_type in ("float32", "int8"):
        translator = rnnsearch.Translator(str(tmp_path / "q"), compute_type=compute_type)
        assert translator.translate_batch(sentence, beam_size=2)[0].hypotheses[0]
        assert translator.encode(sentence)[0].shape == (2, 10)
