"""OpenNMT-py converter: checkpoints made by OpenNMT-py itself (tools/make_opennmt_fixtures.py)
must translate exactly as OpenNMT-py translated them, and unsupported options must be
refused by name. OpenNMT-py is not needed: the fixtures hold its outputs."""
import argparse
import json
import math
import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnsearch  # noqa: E402
from rnnsearch import ModelError  # noqa: E402
from rnnsearch.cli import main as cli_main  # noqa: E402
from rnnsearch.convert.opennmt import converter as opennmt_py  # noqa: E402

from framework_fixtures import fixture_dir, fixture_names, load_expected  # noqa: E402

FIXTURES = fixture_dir("opennmt")
# the fixtures compared with the engine's default search (copy models need search="opennmt",
# whose own tests are tests/test_opennmt_search.py)
NAMES = [n for n in fixture_names("opennmt") if "oracle_beam" in load_expected("opennmt", n)]
TOL = 1e-4


def _expected(name):
    return load_expected("opennmt", name)


def _convert(path, output):
    opennmt_py.convert(argparse.Namespace(checkpoint=path, output=output))


@pytest.fixture(scope="module")
def translators(tmp_path_factory):
    made = {}
    for name in NAMES:
        out = str(tmp_path_factory.mktemp(name))
        _convert(os.path.join(FIXTURES, name, "model.pt"), out)
        made[name] = rnnsearch.Translator(out)
    return made


def _close(a, b):
    return math.isclose(a, b, rel_tol=TOL, abs_tol=TOL)


def _run(translator, expected, beam):
    return translator.translate_batch(expected["sources"], beam_size=beam, num_hypotheses=beam,
                                      max_decoding_length=expected["settings"]["max_length"],
                                      return_scores=True)


def test_fixtures_present():
    assert len(NAMES) >= 9, NAMES
    assert any(_expected(n)["trained_by"].startswith("OpenNMT-py 2.") for n in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_greedy_equals_onmt_translate(translators, name):
    expected = _expected(name)
    for result, reference in zip(_run(translators[name], expected, 1), expected["greedy"]):
        assert result.hypotheses[0] == reference["tokens"]
        assert _close(result.scores[0], reference["score"]), (result.scores[0], reference)


@pytest.mark.parametrize("name", NAMES)
def test_beam_equals_onmt_model_under_spec_search(translators, name):
    """All 5 hypotheses and scores of OpenNMT-py's own network stepped by the spec's beam
    search (tests/oracle_search.py) - the conversion is exact, not just the best path."""
    expected = _expected(name)
    for result, reference in zip(_run(translators[name], expected, 5), expected["oracle_beam"]):
        assert result.hypotheses == [h["tokens"] for h in reference]
        for score, hyp in zip(result.scores, reference):
            assert _close(score, hyp["score"]), (score, hyp)


@pytest.mark.parametrize("name", NAMES)
def test_beam_best_equals_onmt_translate(translators, name):
    """onmt_translate's own beam search (-beam_size 5 -length_penalty none) differs from the
    spec's (it refills the beam from the top K only and stops once the best candidate ends),
    so its best hypothesis is compared where the two searches agree (flagged per sentence
    when the fixture was made; every sentence in the current fixtures)."""
    expected = _expected(name)
    agree = expected["beam_top_agrees_with_oracle"]
    assert sum(agree) >= len(agree) // 2
    for result, reference, same in zip(_run(translators[name], expected, 5), expected["beam"],
                                       agree):
        if same:
            assert result.hypotheses[0] == reference[0]["tokens"]
            assert _close(result.scores[0], reference[0]["score"])


def test_cli_and_no_framework_import(tmp_path, capsys):
    name = "v2_rnn_lstm_general_bridge"  # pickles torchtext Fields and onmt classes
    out = str(tmp_path / "m")
    assert cli_main(["convert", "--from", "opennmt-py",
                     os.path.join(FIXTURES, name, "model.pt"), "-o", out]) == 0
    assert not any(m == "onmt" or m.startswith(("onmt.", "torchtext")) for m in sys.modules)
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["special_tokens"] == {"pad": "<blank>", "unk": "<unk>", "bos": "<s>",
                                        "eos": "</s>"}
    assert config["bridge"]["activation"] == "relu"
    assert config["decoder"]["type"] == "luong" and config["decoder"]["input_feeding"]


@pytest.mark.parametrize("name,bridge_from,activation", [
    ("brnn_gru_mlp_feed", None, "identity"),                      # mlp, input feeding
    ("rnn_gru_mlp_bridge", "matching_layer", "identity"),         # mlp, no input feeding
    ("brnn_lstm_dot_bridge_2layers", "matching_layer", "tanh"),   # rows = layers
    ("rnn_lstm_general_feed_bridge_2layers", "all_layers", "tanh"),
    ("brnn_lstm_mlp_feed_bridge_3layers", "all_layers", "identity"),
])
def test_mapping_of_attention_and_bridge(tmp_path, name, bridge_from, activation):
    checkpoint = opennmt_py.load_checkpoint(os.path.join(FIXTURES, name, "model.pt"))
    config, _, _, _ = opennmt_py.build(checkpoint)
    assert config["decoder"]["attentional_layer"]
    assert config["decoder"].get("attentional_activation", "tanh") == activation
    assert config["bridge"]["type"] == ("dense" if bridge_from else "last")
    if bridge_from:
        assert config["bridge"]["from"] == bridge_from


def _onmt_bridge(linear, states, layers, directions):
    """OpenNMT-py 3.x RNNEncoder._bridge and decoder init_state for one state kind:
    states [L·D, batch, h] -> decoder states [L, batch, D·h]."""
    states = states.permute(1, 0, 2).contiguous()
    size = states.size()
    out = torch.relu(linear(states.view(-1, linear.in_features))).view(size)
    out = out.permute(1, 0, 2).contiguous()
    if directions == 2:
        out = torch.cat([out[0::2], out[1::2]], 2)
    return out


@pytest.mark.parametrize("layers,directions", [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1),
                                               (3, 2), (4, 2)])
def test_bridge_weights_equal_onmt_bridge(layers, directions):
    """The canonical dense bridge (per decoder layer, over one or all encoder layers' final
    states) computes exactly OpenNMT-py's reshaped Linear."""
    h, batch = 3, 5
    torch.manual_seed(layers * 10 + directions)
    linear = torch.nn.Linear(layers * h, layers * h)
    states = torch.randn(layers * directions, batch, h)
    expected = _onmt_bridge(linear, states, layers, directions)
    source, per_layer = opennmt_py._bridge_weights(
        linear.weight.detach().numpy(), linear.bias.detach().numpy(), layers, directions, h)
    assert source == ("matching_layer" if layers in (1, directions) else "all_layers")
    finals = states.numpy()  # index k = layer·D + direction
    for layer, (w, b) in enumerate(per_layer):
        read = finals[layer * directions:(layer + 1) * directions] \
            if source == "matching_layer" else finals
        f = np.concatenate(list(read), axis=1)  # [batch, (layers read)·D·h]
        got = np.maximum(f @ w.T + b, 0)
        np.testing.assert_allclose(got, expected[layer].detach().numpy(), atol=1e-6)


# ----- refusals


def _v3_checkpoint():
    return opennmt_py.load_checkpoint(os.path.join(FIXTURES, "brnn_lstm_general_feed_2layers",
                                                   "model.pt"))


@pytest.mark.parametrize("option,value", [
    ("context_gate", "both"),
    ("encoder_type", "transformer"), ("decoder_type", "cnn"), ("rnn_type", "SRU"),
    ("global_attention_function", "sparsemax"), ("generator_function", "sparsemax"),
    ("position_encoding", True), ("model_task", "lm"),
])
def test_unsupported_option_is_named(tmp_path, option, value):
    checkpoint = _v3_checkpoint()
    setattr(checkpoint["opt"], option, value)
    path = str(tmp_path / "bad.pt")
    torch.save(checkpoint, path)
    with pytest.raises(ModelError, match=option):
        _convert(path, str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out" / "config.json")


@pytest.mark.parametrize("name", ["brnn_lstm_general_coverage",
                                  "v2_rnn_gru_mlp_copy_reuse_coverage_bridge"])
def test_coverage_attention_converts_without_linear_cover(name):
    """coverage_attn: no OpenNMT-py release passes the coverage to the attention when it
    translates, so linear_cover is trained but has no effect there; the conversion drops it
    (the model then decodes as onmt_translate does: tests/test_opennmt_search.py)."""
    checkpoint = opennmt_py.load_checkpoint(os.path.join(FIXTURES, name, "model.pt"))
    assert checkpoint["opt"].coverage_attn
    assert "decoder.attn.linear_cover.weight" in checkpoint["model"]
    config, tensors, _, _ = opennmt_py.build(checkpoint)
    assert not any("cover" in t for t in tensors)


@pytest.mark.parametrize("name,reuse,score", [
    ("v2_brnn_lstm_general_copy_mlp", False, "additive"),
    ("v2_rnn_gru_mlp_copy_reuse_coverage_bridge", True, None),
    ("v1_brnn_lstm_mlp_copy_reuse_coverage_bridge", True, None),
    ("v0_brnn_lstm_dot_copy_general", False, "general"),
])
def test_copy_generator_mapping(name, reuse, score):
    """The CopyGenerator's switch and its copy attention (its own, or the decoder's)."""
    checkpoint = opennmt_py.load_checkpoint(os.path.join(FIXTURES, name, "model.pt"))
    config, tensors, _, target = opennmt_py.build(checkpoint)
    copy = config["copy"]
    assert copy.get("reuse_attention", False) == reuse and copy.get("score") == score
    assert tensors["copy.gate.weight"].shape == (1, config["decoder"]["hidden_size"])
    assert tensors["decoder.output.weight"].shape[0] == len(target)
    assert ("copy.attention.key.weight" in tensors) == (score in ("general", "additive"))


def test_release_is_recorded():
    """search="opennmt" follows the rules of the release that wrote the checkpoint."""
    for name in fixture_names("opennmt"):
        trained_by = _expected(name)["trained_by"]
        config, _, _, _ = opennmt_py.build(opennmt_py.load_checkpoint(
            os.path.join(FIXTURES, name, "model.pt")))
        assert config["opennmt"] == {"release": max(1, int(trained_by.split()[1][0]))}, name


def test_copy_without_input_feeding_is_refused(tmp_path):
    checkpoint = _v3_checkpoint()
    checkpoint["opt"].copy_attn = True
    checkpoint["opt"].input_feed = 0
    path = str(tmp_path / "bad.pt")
    torch.save(checkpoint, path)
    with pytest.raises(ModelError, match="copy_attn"):
        _convert(path, str(tmp_path / "out"))


def test_unmapped_weight_is_refused(tmp_path):
    checkpoint = _v3_checkpoint()
    checkpoint["model"]["decoder.attn.linear_cover.weight"] = torch.zeros(32, 1)
    path = str(tmp_path / "bad.pt")
    torch.save(checkpoint, path)
    with pytest.raises(ModelError, match="linear_cover"):
        _convert(path, str(tmp_path / "out"))


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch rnnsearch-pwned",))


def test_pickled_code_is_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    checkpoint = _v3_checkpoint()
    checkpoint["extra"] = _Payload()
    torch.save(checkpoint, "evil.pt")
    with pytest.raises(ModelError, match="system"):
        _convert("evil.pt", str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "rnnsearch-pwned")


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "x.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError):
        _convert(str(path), str(tmp_path / "out"))
    with pytest.raises(ModelError, match="not found"):
        _convert(str(tmp_path / "missing.pt"), str(tmp_path / "out"))


def test_weights_in_safetensors_beside_the_pt(tmp_path, translators):
    """OpenNMT-py 3.x with -save_format safetensors keeps the weights (generator included)
    in NAME.safetensors next to a NAME.pt holding vocab and opt."""
    safetensors_torch = pytest.importorskip("safetensors.torch")
    name = "rnn_gru_mlp_bridge"
    checkpoint = opennmt_py.load_checkpoint(os.path.join(FIXTURES, name, "model.pt"))
    weights = dict(checkpoint.pop("model"))
    weights.update({f"generator.{k}": v for k, v in checkpoint.pop("generator").items()})
    safetensors_torch.save_file({k: v.contiguous() for k, v in weights.items()},
                                str(tmp_path / "split.safetensors"))
    torch.save(checkpoint, tmp_path / "split.pt")
    out = str(tmp_path / "out")
    _convert(str(tmp_path / "split.pt"), out)
    expected = _expected(name)
    results = _run(rnnsearch.Translator(out), expected, 1)
    assert [r.hypotheses[0] for r in results] == [g["tokens"] for g in expected["greedy"]]
