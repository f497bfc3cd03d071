"""`rnnsearch convert --from onnx` of tf2onnx exports: the Keras lstm_seq2seq example and its
dot / additive attention variants, trained on TensorFlow and exported by the real tf2onnx
(tools/make_tf2onnx_fixtures.py; TensorFlow itself is not in the test environment). The
converted models are checked against TensorFlow's own greedy decoding recorded with the
graphs (the example's decode_sequence), and against ONNX Runtime running the exported
graphs through the spec's search (tests/oracle_search.py), greedy and beam 5."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnx")

import rnnsearch  # noqa: E402
from oracle_search import assert_engine_matches, beam_search  # noqa: E402
from one_hot_keras import KERAS_VARIANTS, LATENT  # noqa: E402
from one_hot_task import vocabulary_tokens  # noqa: E402
from rnnsearch.convert.onnx import convert_onnx  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "one_hot", "tf2onnx")
SUMMARY = json.load(open(os.path.join(FIXTURES, "summary.json"), encoding="utf-8"))
INPUT_INDEX, TARGET_INDEX = SUMMARY["input_token_index"], SUMMARY["target_token_index"]
SRC, TGT = vocabulary_tokens(INPUT_INDEX), vocabulary_tokens(TARGET_INDEX)
BOS, EOS = TARGET_INDEX["\t"], TARGET_INDEX["\n"]
MAX_LENGTH = 12


def graphs(variant):
    return tuple(os.path.join(FIXTURES, variant, f"{part}.onnx")
                 for part in ("encoder", "decoder"))


@pytest.fixture(scope="module", params=KERAS_VARIANTS)
def converted(request, tmp_path_factory):
    variant = request.param
    out = str(tmp_path_factory.mktemp(variant) / "model")
    with pytest.warns(UserWarning, match="tokenization is a guess"):
        config = convert_onnx(*graphs(variant), out, source_vocab=SRC, target_vocab=TGT)
    return variant, config, rnnsearch.Translator(out)


def test_config(converted):
    variant, config, translator = converted
    assert config["source"]["kind"] == "one_hot"
    assert config["source"]["feature_size"] == len(SRC)
    assert config["encoder"]["hidden_size"] == LATENT
    if variant == "lstm_seq2seq":
        assert config["decoder"]["type"] == "none"
    else:
        assert config["decoder"]["type"] == "luong"
        assert config["attention"]["score"] == ("dot" if variant == "dot_attention"
                                                else "additive")
    assert translator.target_vocab.tokens[:len(TGT)] == TGT


def test_greedy_equals_tensorflow(converted):
    """The example's decode_sequence as TensorFlow ran it: the same characters, and the sum
    of their log-probabilities (end included) as the score."""
    variant, _, translator = converted
    with open(os.path.join(FIXTURES, variant, "greedy.json"), encoding="utf-8") as f:
        decodes = json.load(f)
    sources = [[INPUT_INDEX[char] for char in d["source"]] for d in decodes]
    results = translator._engine.translate(sources, beam_size=1, max_length=MAX_LENGTH)
    for decode, result in zip(decodes, results):
        ids, score, _ = result[0]
        assert decode["ids"][-1] == EOS   # every recorded decoding ended
        assert ids == decode["ids"][:-1]
        assert score == pytest.approx(decode["log_prob"], abs=1e-4)


class OrtTf2onnx:
    """The exported graphs run by ONNX Runtime as a Keras user runs them: one-hot vectors
    [batch, 1, V_t] in, Keras's 2-D states."""

    def __init__(self, variant):
        ort = pytest.importorskip("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        enc, dec = graphs(variant)
        self.enc = ort.InferenceSession(enc, options, providers=["CPUExecutionProvider"])
        self.dec = ort.InferenceSession(dec, options, providers=["CPUExecutionProvider"])
        self.enc_outputs = [o.name for o in self.enc.get_outputs()]
        self.dec_outputs = [o.name for o in self.dec.get_outputs()]
        self.attention = "memory" in self.enc_outputs

    def search(self, ids, beam_size):
        x = np.eye(len(SRC), dtype=np.float32)[ids][None]
        encoded = dict(zip(self.enc_outputs, self.enc.run(None, {"x": x})))

        def step(states, tokens):
            n = len(tokens)
            feeds = {"y": np.eye(len(TGT), dtype=np.float32)[tokens][:, None],
                     "h": np.concatenate([s[0] for s in states]),
                     "c": np.concatenate([s[1] for s in states])}
            if self.attention:
                feeds["memory"] = np.repeat(encoded["memory"], n, axis=0)
            out = dict(zip(self.dec_outputs, self.dec.run(None, feeds)))
            log_probs = np.log(out["probs"][:, 0])
            return log_probs, [(out["h_out"][i:i + 1], out["c_out"][i:i + 1])
                               for i in range(n)], None

        return beam_search(step, (encoded["h"], encoded["c"]), BOS, EOS,
                           beam_size=beam_size, num_hypotheses=beam_size,
                           max_length=MAX_LENGTH)


def _sources(n=10, seed=0):
    rng = np.random.default_rng(seed)
    letters = [INPUT_INDEX[char] for char in "abcdefgh"]
    return [list(rng.choice(letters, rng.integers(1, 9))) for _ in range(n)]


@pytest.mark.parametrize("beam_size", [1, 5])
def test_engine_matches_onnxruntime(converted, beam_size):
    variant, _, translator = converted
    oracle = OrtTf2onnx(variant)
    assert_engine_matches(translator._engine, [[int(i) for i in s] for s in _sources()],
                          oracle.search, beam_size, MAX_LENGTH)


def test_command_line(tmp_path):
    """convert → translate from the shell, the vocabularies as files."""
    for name, tokens in (("src.vocab", SRC), ("tgt.vocab", TGT)):
        (tmp_path / name).write_text("\n".join(tokens) + "\n", encoding="utf-8")
    encoder, decoder = graphs("dot_attention")
    run = [sys.executable, "-m", "rnnsearch"]
    subprocess.run(run + ["convert", "--from", "onnx", "--encoder", encoder, "--decoder",
                          decoder, "--source-vocab", str(tmp_path / "src.vocab"),
                          "--target-vocab", str(tmp_path / "tgt.vocab"),
                          "-o", str(tmp_path / "m")], check=True, capture_output=True)
    out = subprocess.run(run + ["translate", "-m", str(tmp_path / "m"), "--beam-size", "1"],
                         input="b a d g e\n", capture_output=True, text=True, check=True)
    with open(os.path.join(FIXTURES, "dot_attention", "greedy.json"), encoding="utf-8") as f:
        badge = next(d for d in json.load(f) if d["source"] == "badge")
    assert out.stdout.split() == [TGT[i] for i in badge["ids"][:-1]]
