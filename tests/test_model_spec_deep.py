"""The schema's Nematus/Marian keys (model_spec_deep.py): what they accept, what they refuse
(ModelError naming the field), and the tensors they ask for."""
import math

import pytest

from rnnsearch import ModelError
from rnnsearch.model_spec import check_tensors, expected_tensors, normalize_config
from rnnsearch.random_model import random_tensors

H, E = 6, 5


def _config(**sections):
    config = {"format": "rnnsearch-model", "format_version": 1,
              "encoder": {"embedding_size": E, "cell": "gru", "hidden_size": H,
                          "bidirectional": True},
              "bridge": {"type": "mean"},
              "attention": {"score": "additive", "size": 7},
              "decoder": {"type": "conditional", "embedding_size": E, "cell": "gru",
                          "hidden_size": H, "readout": "tanh", "readout_size": 4}}
    for section, keys in sections.items():
        config[section].update(keys)
    return config


def test_marian_like_config_and_its_tensors():
    config = normalize_config(_config(
        encoder={"stacking": "alternating", "num_layers": 2, "cell_depth": 2,
                 "layer_norm": "split"},
        decoder={"base_cell_depth": 3, "num_layers": 2, "cell_depth": 2, "layer_norm": "joint",
                 "readout_layer_norm": True, "start_embedding": "zeros"},
        attention={"layer_norm": True}, bridge={"layer_norm": True}))
    specs = expected_tensors(config, 10, 11)
    assert specs["encoder.layers.1.backward.weight_ih"].shape == (3 * H, H)  # own stack
    assert specs["encoder.layers.0.forward.depth.1.weight_hh"].shape == (3 * H, H)
    assert "encoder.layers.0.forward.depth.1.weight_ih" not in specs
    assert specs["decoder.layers.0.weight_ih"].shape == (3 * H, E)
    assert specs["decoder.layers.0.depth.1.weight_ih"].shape == (3 * H, 2 * H)  # GRU 2
    assert specs["decoder.layers.0.depth.2.weight_hh"].shape == (3 * H, H)
    assert "decoder.layers.0.depth.3.weight_hh" not in specs
    assert specs["decoder.layers.1.depth.1.norm_hh.weight"].shape == (3 * H,)
    assert specs["decoder.readout_norm.weight"].shape == (3, 4)
    assert specs["attention.key_norm.weight"].shape == (7,)
    assert specs["bridge.layers.1.hidden_norm.weight"].shape == (H,)
    tensors = random_tensors(config, 10, 11)
    check_tensors(config, tensors, 10, 11)
    del tensors["decoder.layers.0.depth.2.norm_hh.weight"]
    with pytest.raises(ModelError, match="depth.2.norm_hh.weight"):
        check_tensors(config, tensors, 10, 11)


def test_defaults_keep_existing_models_as_they_were():
    config = normalize_config(_config(decoder={"type": "bahdanau"}))
    assert config["encoder"]["stacking"] == "layerwise" and config["encoder"]["cell_depth"] == 1
    assert config["decoder"]["layer_norm"] == "none"
    assert config["decoder"]["start_embedding"] == "bos"
    assert not any("norm" in name or "depth" in name
                   for name in expected_tensors(config, 10, 11))


@pytest.mark.parametrize("sections, field", [
    (dict(encoder={"cell": "lstm", "layer_norm": "joint"}), "encoder.cell_depth"),
    (dict(decoder={"cell": "lstm"}), "decoder.cell_depth"),
    (dict(decoder={"gru_reset_after": False}), "gru_reset_after"),
    (dict(encoder={"stacking": "separate", "merge": "sum"}), "encoder.stacking"),
    (dict(encoder={"stacking": "separate", "bidirectional": False}), "encoder.stacking"),
    (dict(encoder={"stacking": "diagonal"}), "encoder.stacking"),
    (dict(encoder={"layer_norm": "rms"}), "encoder.layer_norm"),
    (dict(encoder={"cell_depth": 17}), "encoder.cell_depth"),
    (dict(decoder={"base_cell_depth": 0}), "decoder.base_cell_depth"),
    (dict(decoder={"layer_norm_eps": 0.0}), "decoder.layer_norm_eps"),
    (dict(decoder={"layer_norm_eps": math.nan}), "decoder.layer_norm_eps"),
    (dict(attention={"layer_norm_eps": "small"}), "attention.layer_norm_eps"),
    (dict(decoder={"readout": "none", "readout_layer_norm": True}), "readout_layer_norm"),
    (dict(attention={"layer_norm": True, "score": "general"}), "attention.layer_norm"),
    (dict(bridge={"layer_norm": True, "type": "zeros"}), "bridge.layer_norm"),
    (dict(bridge={"layer_norm": "yes"}), "bridge.layer_norm"),
    (dict(decoder={"start_embedding": "random"}), "decoder.start_embedding"),
    (dict(decoder={"input_feeding": True}), "input_feeding"),
])
def test_refusals_name_the_field(sections, field):
    with pytest.raises(ModelError, match=field.replace(".", r"\.")):
        normalize_config(_config(**sections))


def test_int8_keeps_norms_float():
    from rnnsearch.model_spec import is_quantizable
    assert not is_quantizable("decoder.readout_norm.weight", (3, 4))
    assert is_quantizable("decoder.layers.0.depth.1.weight_hh", (3 * H, H))
