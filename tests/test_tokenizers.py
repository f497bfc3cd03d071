"""Tokenizers against the reference libraries: SentencePiece models and subword-nmt BPE
codes trained here (seconds), then rnnsearch's tokenizers must cut and join text exactly as
the libraries do; and model directories that carry them."""
import json
import os
import random
import sys
import warnings

import pytest

import rnnsearch
from rnnsearch import ModelError
from rnnsearch.model_dir import write_model_dir
from rnnsearch.random_model import random_tensors
from rnnsearch.tokenizers import load_tokenizer, tokenizer_section
from rnnsearch.tokenizers.bpe import BpeTokenizer

spm = pytest.importorskip("sentencepiece")
learn_bpe = pytest.importorskip("subword_nmt.learn_bpe")
apply_bpe = pytest.importorskip("subword_nmt.apply_bpe")

WORDS = ["attention", "is", "all", "you", "need", "the", "encoder", "decoder", "reads",
         "writes", "aligns", "translation", "neural", "machine", "jointly", "learning",
         "to", "align", "and", "translate", "über", "café", "naïve"]


def _corpus(n, seed):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 9))) for _ in range(n)]


def _unseen(seed):
    """Text the models never saw: new words, lone letters, digits, odd characters."""
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyzéü0123456789"
    lines = ["x", "a b c", "zzz qqq", "attentions neurally", "12 345", "日本語 text", "a-b c.d"]
    for _ in range(40):
        lines.append(" ".join("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
                              for _ in range(rng.randint(1, 6))))
    return lines


def _corpus_file(directory, seed):
    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(_corpus(400, seed)) + "\n", encoding="utf-8")
    return corpus


@pytest.fixture(scope="module")
def spm_models(tmp_path_factory):
    """A unigram and a BPE SentencePiece model trained on the same small corpus."""
    work = tmp_path_factory.mktemp("spm")
    corpus = _corpus_file(work, 0)
    models = {}
    for kind in ("unigram", "bpe"):
        prefix = str(work / kind)
        spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=prefix, vocab_size=48, hard_vocab_limit=False,
                                       model_type=kind, character_coverage=1.0,
                                       minloglevel=2)
        models[kind] = prefix + ".model"
    return models


@pytest.fixture(scope="module")
def bpe_codes(tmp_path_factory):
    work = tmp_path_factory.mktemp("bpe")
    corpus = _corpus_file(work, 1)
    codes = work / "codes"
    with open(corpus, encoding="utf-8") as infile, open(codes, "w", encoding="utf-8") as out:
        learn_bpe.learn_bpe(infile, out, 60)
    return str(codes)


@pytest.mark.parametrize("kind", ["unigram", "bpe"])
def test_sentencepiece_matches_the_library(spm_models, kind):
    path = spm_models[kind]
    reference = spm.SentencePieceProcessor(model_file=path)
    tokenizer = load_tokenizer("sentencepiece", os.path.dirname(path), os.path.basename(path))
    for line in _corpus(50, 2) + _unseen(3):
        pieces = tokenizer.encode(line)
        assert pieces == reference.encode(line, out_type=str), line
        assert tokenizer.decode(pieces) == reference.decode_pieces(pieces)
        # pieces of the model's own alphabet come back as the text (SentencePiece
        # normalises whitespace runs)
        if all(reference.piece_to_id(p) != reference.unk_id() for p in pieces):
            assert tokenizer.decode(pieces) == " ".join(line.split())


def test_bpe_matches_subword_nmt(bpe_codes):
    with open(bpe_codes, encoding="utf-8") as f:
        reference = apply_bpe.BPE(f)
    tokenizer = BpeTokenizer(bpe_codes)
    lines = _corpus(50, 4) + _unseen(5)
    for line in lines:
        pieces = tokenizer.encode(line)
        assert pieces == reference.segment(line).split(" "), line
        # the joiner removed, the text is back (single spaces)
        assert tokenizer.decode(pieces) == " ".join(line.split())
    assert any(p.endswith("@@") for line in lines for p in tokenizer.encode(line))


def test_bpe_codes_errors_name_the_file(tmp_path):
    bad = tmp_path / "codes"
    bad.write_text("#version: 0.2\na b\nthree parts here\n", encoding="utf-8")
    with pytest.raises(ModelError, match="line 3"):
        BpeTokenizer(str(bad))
    with pytest.raises(ModelError, match="not found"):
        BpeTokenizer(str(tmp_path / "missing"))
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ModelError, match="UTF-8"):
        BpeTokenizer(str(bad))


def _model_with_tokenizer(path, kind, model_file, vocab_pieces):
    """A random model whose vocabularies are a tokenizer's pieces."""
    config = {"format": "rnnsearch-model", "format_version": 1,
              "encoder": {"embedding_size": 8, "cell": "gru", "hidden_size": 8},
              "attention": {"score": "general"},
              "decoder": {"type": "luong", "embedding_size": 8, "cell": "gru",
                          "hidden_size": 8}}
    specials = ["<pad>", "<unk>", "<s>", "</s>"]
    vocab = specials + [p for p in dict.fromkeys(vocab_pieces) if p not in specials]
    source, files = tokenizer_section(kind, "source", model_file)
    target, target_files = tokenizer_section(kind, "target", model_file)
    config["source"], config["target"] = source, target
    tensors = random_tensors(config, len(vocab), len(vocab), seed=3)
    write_model_dir(path, config, tensors, vocab, vocab, files={**files, **target_files})
    return vocab


def _spm_model(tmp_path, path):
    """A random model directory whose vocabularies are the SentencePiece model's pieces."""
    reference = spm.SentencePieceProcessor(model_file=path)
    model = str(tmp_path / "m")
    _model_with_tokenizer(model, "sentencepiece", path,
                          [reference.id_to_piece(i) for i in range(reference.get_piece_size())])
    return model


def test_model_directory_carries_sentencepiece(tmp_path, spm_models):
    path = spm_models["unigram"]
    reference = spm.SentencePieceProcessor(model_file=path)
    pieces = [reference.id_to_piece(i) for i in range(reference.get_piece_size())]
    model = str(tmp_path / "m")
    _model_with_tokenizer(model, "sentencepiece", path, pieces)
    config = json.load(open(os.path.join(model, "config.json")))
    assert config["source"]["tokenizer"] == "sentencepiece"
    assert open(os.path.join(model, config["source"]["tokenizer_model"]), "rb").read() == \
        open(path, "rb").read()
    tr = rnnsearch.Translator(model)
    text = "attention is all you need"
    assert tr.tokenize(text) == reference.encode(text, out_type=str)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = tr.translate([text], beam_size=2, max_decoding_length=8)
    tokens = tr.translate_batch([tr.tokenize(text)], beam_size=2,
                                max_decoding_length=8)[0].hypotheses[0]
    assert out == [reference.decode_pieces(tokens)]


def test_model_directory_carries_bpe(tmp_path, bpe_codes):
    tokenizer = BpeTokenizer(bpe_codes)
    pieces = [p for line in _corpus(200, 6) for p in tokenizer.encode(line)]
    model = str(tmp_path / "m")
    _model_with_tokenizer(model, "bpe", bpe_codes, pieces)
    tr = rnnsearch.Translator(model)
    text = "neural machine translation"
    assert tr.tokenize(text) == tokenizer.encode(text)
    tokens = tr.translate_batch([tr.tokenize(text)], beam_size=2,
                                max_decoding_length=8)[0].hypotheses[0]
    assert tr.translate([text], beam_size=2, max_decoding_length=8) == \
        [tokenizer.decode(tokens)]


def test_missing_or_corrupt_tokenizer_file_is_a_model_error(tmp_path, spm_models):
    model = _spm_model(tmp_path, spm_models["bpe"])
    name = json.load(open(os.path.join(model, "config.json")))["source"]["tokenizer_model"]
    with open(os.path.join(model, name), "wb") as f:
        f.write(b"not a sentencepiece model")
    with pytest.raises(ModelError, match=name.replace(".", r"\.") + ".*not a SentencePiece"):
        rnnsearch.Translator(model)
    os.remove(os.path.join(model, name))
    with pytest.raises(ModelError, match=f"source tokenizer file '{name}'"):
        rnnsearch.Translator(model)
    with pytest.raises(ModelError, match="model file"):
        tokenizer_section("sentencepiece", "source", str(tmp_path / "nowhere.model"))


def test_missing_package_is_a_clear_model_error(tmp_path, spm_models, monkeypatch):
    path = spm_models["unigram"]
    monkeypatch.setitem(sys.modules, "sentencepiece", None)  # import fails
    with pytest.raises(ModelError, match=r'pip install "rnnsearch\[sentencepiece\]"'):
        load_tokenizer("sentencepiece", os.path.dirname(path), os.path.basename(path))


def test_text_the_tokenizer_cannot_encode_becomes_unk_with_a_warning(tmp_path, spm_models):
    tr = rnnsearch.Translator(_spm_model(tmp_path, spm_models["unigram"]))
    for text in ["日本語 ☃", "bad \ud800 surrogate", "\x00\x01"]:
        with pytest.warns(UserWarning, match="unknown to the model|not valid Unicode"):
            out = tr.translate([text], beam_size=2, max_decoding_length=5)
        assert isinstance(out[0], str)


def test_tokenizer_model_must_stay_inside_the_directory(tmp_path, spm_models):
    path = spm_models["unigram"]
    model = _spm_model(tmp_path, path)
    config_path = os.path.join(model, "config.json")
    config = json.load(open(config_path))
    for bad in ("../outside.model", "/etc/passwd", ""):
        config["source"]["tokenizer_model"] = bad
        json.dump(config, open(config_path, "w"))
        with pytest.raises(ModelError, match="tokenizer_model"):
            rnnsearch.Translator(model)
    # a symbolic link out of the directory is refused too
    os.symlink(path, os.path.join(model, "link.model"))
    config["source"]["tokenizer_model"] = "link.model"
    json.dump(config, open(config_path, "w"))
    with pytest.raises(ModelError, match="leads outside"):
        rnnsearch.Translator(model)
