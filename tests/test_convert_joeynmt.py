"""JoeyNMT converter: recurrent models trained by JoeyNMT itself
(tools/make_joeynmt_fixtures.py) must translate exactly as JoeyNMT translated them, and
unsupported options must be refused by name. JoeyNMT is not needed: the fixtures hold its
outputs."""
import argparse
import json
import math
import os
import shutil

import pytest

pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")

import rnnsearch  # noqa: E402
from rnnsearch import ModelError  # noqa: E402
from rnnsearch.cli import main as cli_main  # noqa: E402
from rnnsearch.convert import joeynmt  # noqa: E402

from framework_fixtures import fixture_dir, fixture_names, load_expected  # noqa: E402

FIXTURES = fixture_dir("joeynmt")
NAMES = fixture_names("joeynmt")
TOL = 1e-4


def _expected(name):
    return load_expected("joeynmt", name)


def _convert(model, output, **options):
    args = dict(model=model, output=output, config=None, src_vocab=None, trg_vocab=None)
    args.update(options)
    joeynmt.convert(argparse.Namespace(**args))


@pytest.fixture(scope="module")
def translators(tmp_path_factory):
    made = {}
    for name in NAMES:
        out = str(tmp_path_factory.mktemp(name))
        _convert(os.path.join(FIXTURES, name), out)
        made[name] = rnnsearch.Translator(out)
    return made


def _close(a, b):
    return math.isclose(a, b, rel_tol=TOL, abs_tol=TOL)


def _tokens(tokens):
    """JoeyNMT's char level writes a space as '▁'; the converted model uses ' '."""
    return [" " if t == "\u2581" else t for t in tokens]


def _run(translator, expected, beam):
    sources = [translator.tokenize(s) for s in expected["sources"]]
    # JoeyNMT never ends a hypothesis at step 0 (testing.min_output_length defaults to 1)
    return translator.translate_batch(
        sources, beam_size=beam, num_hypotheses=beam, min_decoding_length=1,
        max_decoding_length=expected["settings"]["max_output_length"], return_scores=True)


def test_fixtures_present():
    assert len(NAMES) >= 4, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_greedy_equals_joeynmt(translators, name):
    expected = _expected(name)
    for result, reference in zip(_run(translators[name], expected, 1), expected["greedy"]):
        assert result.hypotheses[0] == _tokens(reference["tokens"])
        assert _close(result.scores[0], reference["score"]), (result.scores[0], reference)


@pytest.mark.parametrize("name", NAMES)
def test_beam_equals_joeynmt_model_under_spec_search(translators, name):
    expected = _expected(name)
    for result, reference in zip(_run(translators[name], expected, 5), expected["oracle_beam"]):
        assert result.hypotheses == [_tokens(h["tokens"]) for h in reference]
        for score, hyp in zip(result.scores, reference):
            assert _close(score, hyp["score"]), (score, hyp)


@pytest.mark.parametrize("name", NAMES)
def test_beam_best_equals_joeynmt(translators, name):
    """JoeyNMT's beam search keeps expanding finished hypotheses and ends when every beam
    slot has held a finished one, so its lower n-best entries may differ from the spec's;
    its best hypothesis is compared where the searches agree (all current sentences)."""
    expected = _expected(name)
    agree = expected["beam_top_agrees_with_oracle"]
    assert sum(agree) >= len(agree) // 2
    for result, reference, same in zip(_run(translators[name], expected, 5), expected["beam"],
                                       agree):
        if same:
            assert result.hypotheses[0] == _tokens(reference[0]["tokens"])
            assert _close(result.scores[0], reference[0]["score"])


def test_char_level_strings(translators):
    name = "lstm_bahdanau_lastfwd_nofeed_char"
    expected = _expected(name)
    translator = translators[name]
    assert translator.config["source"]["tokenizer"] == "chars"
    texts = translator.translate(expected["sources"], beam_size=1, min_decoding_length=1,
                                 max_decoding_length=30)
    assert texts == ["".join(_tokens(g["tokens"])) for g in expected["greedy"]]


def test_cli_with_checkpoint_and_config(tmp_path):
    name = "gru_bahdanau_bridge_feed"
    source = os.path.join(FIXTURES, name)
    ckpt = tmp_path / "elsewhere.ckpt"
    shutil.copy(os.path.join(source, "best.ckpt"), ckpt)
    out = str(tmp_path / "m")
    assert cli_main(["convert", "--from", "joeynmt", str(ckpt),
                     "--config", os.path.join(source, "config.yaml"),
                     "--src-vocab", os.path.join(source, "src_vocab.txt"),
                     "--trg-vocab", os.path.join(source, "trg_vocab.txt"), "-o", out]) == 0
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["source"]["add_eos"] and not config["source"]["add_bos"]
    assert {k: config["bridge"][k] for k in ("type", "from", "activation", "lstm_cell")} == \
        {"type": "dense", "from": "top_layer", "activation": "tanh", "lstm_cell": "zeros"}
    assert config["attention"]["score"] == "additive"
    assert config["decoder"]["type"] == "luong"


# ----- refusals


def _edited_copy(tmp_path, name, edit):
    target = tmp_path / "model"
    shutil.copytree(os.path.join(FIXTURES, name), target)
    with open(target / "config.yaml", encoding="utf-8") as f:
        config = yaml.safe_load(f)
    edit(config)
    with open(target / "config.yaml", "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f)
    return str(target)


@pytest.mark.parametrize("option,edit", [
    ("model.encoder.type", lambda c: c["model"]["encoder"].update(type="transformer")),
    ("model.decoder.type", lambda c: c["model"]["decoder"].pop("type")),  # default transformer
    ("model.decoder.activation", lambda c: c["model"]["decoder"].update(activation="relu")),
    ("model.encoder.bidirectional",
     lambda c: c["model"]["encoder"].update(bidirectional=False)),
    ("model.decoder.attention", lambda c: c["model"]["decoder"].update(attention="dot")),
])
def test_unsupported_option_is_named(tmp_path, option, edit):
    path = _edited_copy(tmp_path, "gru_bahdanau_bridge_feed", edit)
    with pytest.raises(ModelError, match=option.replace(".", r"\.")):
        _convert(path, str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out" / "config.json")


def test_special_symbol_ids_are_checked(tmp_path):
    path = _edited_copy(tmp_path, "gru_bahdanau_bridge_feed",
                        lambda c: c["data"].update(special_symbols={"unk_id": 3}))
    with pytest.raises(ModelError, match="unk_id"):
        _convert(path, str(tmp_path / "out"))


def test_unmapped_weight_is_refused(tmp_path):
    import torch
    target = tmp_path / "model"
    shutil.copytree(os.path.join(FIXTURES, "gru_bahdanau_bridge_feed"), target)
    checkpoint = torch.load(target / "best.ckpt", weights_only=True)
    checkpoint["model_state"]["decoder.extra.weight"] = torch.zeros(2, 2)
    torch.save(checkpoint, target / "best.ckpt")
    with pytest.raises(ModelError, match="decoder.extra.weight"):
        _convert(str(target), str(tmp_path / "out"))


def test_missing_files(tmp_path):
    with pytest.raises(ModelError, match="no .ckpt"):
        _convert(str(tmp_path), str(tmp_path / "out"))
    shutil.copy(os.path.join(FIXTURES, "gru_bahdanau_bridge_feed", "best.ckpt"), tmp_path)
    with pytest.raises(ModelError, match="config"):
        _convert(str(tmp_path), str(tmp_path / "out"))


def test_testing_section_becomes_the_decoding_defaults(translators):
    """config.yaml's testing section (beam_size 1, max_output_length 30, JoeyNMT's
    min_output_length default 1) is what translate() uses when the caller says nothing."""
    name = NAMES[0]
    translator, expected = translators[name], _expected(name)
    decoding = translator.config["decoding"]
    assert decoding["beam_size"] == 1 and decoding["num_hypotheses"] == 1
    assert decoding["max_decoding_length"] == expected["settings"]["max_output_length"]
    assert decoding["min_decoding_length"] == 1
    sources = [translator.tokenize(s) for s in expected["sources"]]
    default = translator.translate_batch(sources, return_scores=True)
    for result, reference in zip(default, expected["greedy"]):
        assert result.hypotheses[0] == _tokens(reference["tokens"])


def test_subword_tokenizer_of_the_config_is_carried_over(tmp_path):
    """data.src/trg level 'bpe' with a SentencePiece model_file (JoeyNMT copies it into its
    model directory) becomes the model directory's tokenizer; generate_unk: false
    suppresses UNK."""
    spm = pytest.importorskip("sentencepiece")
    yaml = pytest.importorskip("yaml")
    name = NAMES[0]
    source = tmp_path / "joey"
    shutil.copytree(os.path.join(FIXTURES, name), source)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join("a b c d e f g h i j k l".split()) * 20 + "\n")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(source / "sp"),
                                   vocab_size=16, hard_vocab_limit=False, minloglevel=2)
    config = yaml.safe_load((source / "config.yaml").read_text())
    for side in ("src", "trg"):
        config["data"][side].update(level="bpe", tokenizer_type="sentencepiece",
                                    tokenizer_cfg={"model_file": "/elsewhere/sp.model"})
    config["testing"].update(generate_unk=False, beam_size=3, n_best=2)
    (source / "config.yaml").write_text(yaml.safe_dump(config))
    out = str(tmp_path / "out")
    _convert(str(source), out)
    translator = rnnsearch.Translator(out)
    settings = translator.config
    assert settings["source"]["tokenizer"] == "sentencepiece"
    assert settings["target"]["tokenizer"] == "sentencepiece"
    assert open(os.path.join(out, settings["source"]["tokenizer_model"]), "rb").read() == \
        (source / "sp.model").read_bytes()
    assert settings["decoding"]["suppress_tokens"] == [settings["special_tokens"]["unk"]]
    assert settings["decoding"]["beam_size"] == 3 and settings["decoding"]["num_hypotheses"] == 2
    reference = spm.SentencePieceProcessor(model_file=str(source / "sp.model"))
    assert translator.tokenize("abc d") == reference.encode("abc d", out_type=str)
    os.remove(source / "sp.model")   # recorded nowhere else that exists: refused by name
    with pytest.raises(ModelError, match="/elsewhere/sp.model.*--source-spm"):
        _convert(str(source), str(tmp_path / "out2"))
