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


# fixtures trained through subword transforms keep the transform's model files beside the
# checkpoint (the paths recorded in the checkpoint were the fixture tool's scratch files)
SUBWORD_FILES = {"source_spm": "source.spm.model", "target_spm": "target.spm.model",
                 "source_bpe_codes": "source.bpe.codes", "target_bpe_codes": "target.bpe.codes"}


def _subword_options(directory):
    return {option: os.path.join(directory, name) for option, name in SUBWORD_FILES.items()
            if os.path.exists(os.path.join(directory, name))}


def _convert(path, output):
    opennmt_py.convert(argparse.Namespace(checkpoint=path, output=output,
                                          **_subword_options(os.path.dirname(path))))


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


RAW_TEXT = [n for n in NAMES if "raw_greedy" in _expected(n)]


@pytest.mark.parametrize("name", RAW_TEXT)
def test_raw_text_equals_onmt_translate_with_the_same_transforms(translators, name):
    """Raw text in, raw text out: the model directory's tokenizers (carried over from the
    checkpoint's sentencepiece/bpe transform) cut and join exactly as onmt_translate
    -transforms ... did."""
    expected = _expected(name)
    translator = translators[name]
    assert translator.config["source"]["tokenizer"] in ("sentencepiece", "bpe")
    texts, length = expected["texts"], expected["settings"]["max_length"]
    assert [translator.tokenize(t) for t in texts] == expected["sources"]
    greedy = translator.translate(texts, beam_size=1, max_decoding_length=length)
    assert greedy == [g["text"] for g in expected["raw_greedy"]]
    beam = translator.translate(texts, beam_size=5, max_decoding_length=length)
    for ours, theirs, same in zip(beam, expected["raw_beam"],
                                  expected["beam_top_agrees_with_oracle"]):
        if same:
            assert ours == theirs[0]["text"]


@pytest.mark.parametrize("name", RAW_TEXT)
def test_cli_raw_text(tmp_path, name):
    expected = _expected(name)
    out = str(tmp_path / "m")
    options = [f"--{k.replace('_', '-')}={v}" for k, v in
               _subword_options(os.path.join(FIXTURES, name)).items()]
    assert cli_main(["convert", "--from", "opennmt-py", os.path.join(FIXTURES, name, "model.pt"),
                     "-o", out] + options) == 0
    source = tmp_path / "in.txt"
    source.write_text("\n".join(expected["texts"]) + "\n", encoding="utf-8")
    assert cli_main(["translate", "-m", out, "-i", str(source), "-o", str(tmp_path / "out.txt"),
                     "--beam-size", "1", "--max-length", "30", "-q"]) == 0
    assert (tmp_path / "out.txt").read_text(encoding="utf-8").splitlines() == \
        [g["text"] for g in expected["raw_greedy"]]


@pytest.mark.parametrize("name", RAW_TEXT)
def test_recorded_subword_models_are_carried_over(tmp_path, name):
    """The files the checkpoint names are used when they exist; when they do not, the
    conversion stops and says which option gives them."""
    path = os.path.join(FIXTURES, name, "model.pt")
    checkpoint = opennmt_py.load_checkpoint(path)
    opt = checkpoint["opt"]
    kind = opt.transforms[0]
    opt.src_subword_model = str(tmp_path / "gone" / "src.model")  # the trainer's scratch file
    with pytest.raises(ModelError, match="gone.*not here: pass the file with --(source-spm|bpe)"):
        opennmt_py.carry_tokenizers(*_built(checkpoint), argparse.Namespace())
    files = _subword_options(os.path.join(FIXTURES, name))
    opt.src_subword_model = files["source_spm" if kind == "sentencepiece"
                                  else "source_bpe_codes"]
    opt.tgt_subword_model = files["target_spm" if kind == "sentencepiece"
                                  else "target_bpe_codes"]
    config = _built(checkpoint)[0]
    copied = opennmt_py.carry_tokenizers(config, opennmt_py._Options(opt), argparse.Namespace())
    assert config["source"]["tokenizer"] == kind
    assert not config["source"].get("tokenizer_guessed")
    assert sorted(copied.values()) == sorted([opt.src_subword_model, opt.tgt_subword_model])


def _built(checkpoint):
    config = opennmt_py.build(checkpoint)[0]
    return config, opennmt_py._Options(checkpoint["opt"])


def test_a_checkpoint_without_tokenizer_transforms_is_marked_guessed(tmp_path):
    out = str(tmp_path / "m")
    with pytest.warns(UserWarning, match="source tokenization is a guess"):
        _convert(os.path.join(FIXTURES, "brnn_gru_mlp_feed", "model.pt"), out)
    config = rnnsearch.Translator(out).config
    assert config["source"]["tokenizer_guessed"] and config["target"]["tokenizer_guessed"]


REPLACE_UNK = [n for n in NAMES if "greedy_replace_unk" in _expected(n)]


@pytest.mark.parametrize("name", REPLACE_UNK)
def test_replace_unk_equals_onmt_translate(translators, name):
    """onmt_translate -replace_unk [-phrase_table] of OpenNMT-py 2.3.0 on a model whose
    target vocabulary lacks letters it must produce: every hypothesis of the n-best list,
    wherever the unreplaced hypotheses agree (all of greedy)."""
    expected = _expected(name)
    translator = translators[name]
    table = os.path.join(FIXTURES, name, "phrase_table.txt")
    replaced_somewhere = False
    for key, beam, phrase_table in (("greedy_replace_unk", 1, None),
                                    ("greedy_replace_unk_phrase_table", 1, table),
                                    ("beam_replace_unk", 5, None),
                                    ("beam_replace_unk_phrase_table", 5, table)):
        options = dict(beam_size=beam, num_hypotheses=beam,
                       max_decoding_length=expected["settings"]["max_length"])
        plain = translator.translate_batch(expected["sources"], **options)
        ours = translator.translate_batch(expected["sources"], replace_unk=True,
                                          phrase_table=phrase_table, **options)
        theirs_plain = expected["greedy" if beam == 1 else "beam"]
        for i, (p, o, t) in enumerate(zip(plain, ours, expected[key])):
            reference_plain = [theirs_plain[i]] if beam == 1 else theirs_plain[i]
            for rank, (mine, reference) in enumerate(zip(p.hypotheses, reference_plain)):
                if mine == reference["tokens"]:
                    assert o.hypotheses[rank] == t[rank]["tokens"], (key, i, rank)
                    replaced_somewhere |= o.hypotheses[rank] != mine
            if beam == 1:
                assert p.hypotheses[0] == reference_plain[0]["tokens"]
    assert replaced_somewhere
