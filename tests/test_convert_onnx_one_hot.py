"""`rnnsearch convert --from onnx` of one-hot models: PyTorch counterparts of the Keras
lstm_seq2seq example (an LSTM over one-hot float inputs [batch, length, V], the decoder
fed the previous character as a one-hot vector, with or without dot attention over the
encoder outputs), exported with the real torch.onnx.export, converted, and decoded by the
engine and by ONNX Runtime running the exported graphs through the spec's search
(tests/oracle_search.py), greedy and beam 5. Graphs that use the one-hot input for more than
a product with a weight matrix are refused, naming the input."""
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


import rnnsearch  # noqa: E402
from oracle_search import assert_engine_matches, beam_search  # noqa: E402
from rnnsearch.convert.onnx import convert_onnx  # noqa: E402

from one_hot_models import (BOS, EOS, SRC, TGT, OneHotEncoder, OneHotStep,  # noqa: E402
                            ReluEncoder, export_onnx)

MAX_LENGTH = 12
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "one_hot")


class OrtOneHot:
    """The exported graphs run by ONNX Runtime as the user runs them: one-hot vectors in."""

    def __init__(self, enc_path, dec_path):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.enc = ort.InferenceSession(enc_path, options, providers=["CPUExecutionProvider"])
        self.dec = ort.InferenceSession(dec_path, options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.dec.get_inputs()}

    def search(self, ids, beam_size):
        memory, h, c = self.enc.run(None, {"x": np.eye(len(SRC), dtype=np.float32)[[ids]]})

        def step(states, tokens):
            n = len(tokens)
            feeds = {"y": np.eye(len(TGT), dtype=np.float32)[tokens],
                     "h": np.concatenate([s[0] for s in states], 1),
                     "c": np.concatenate([s[1] for s in states], 1),
                     "memory": np.repeat(memory, n, axis=0)}
            feeds = {k: v for k, v in feeds.items() if k in self.inputs}
            log_probs, h1, c1, *a = self.dec.run(None, feeds)
            a = a[0] if a else None
            return log_probs, [(h1[:, i:i + 1], c1[:, i:i + 1]) for i in range(n)], a

        return beam_search(step, (h, c), BOS, EOS, beam_size=beam_size,
                           num_hypotheses=beam_size, max_length=MAX_LENGTH)


ONNX_CASES = ("attention", "no_attention", "projected", "attention_dynamo")


@pytest.fixture(scope="module", params=ONNX_CASES)
def converted(request, tmp_path_factory):
    """The committed graphs of a trained model (tools/make_one_hot_fixtures.py), converted."""
    case = request.param
    directory = os.path.join(FIXTURES, "onnx", case)
    enc_path, dec_path = (os.path.join(directory, f"{part}.onnx")
                          for part in ("encoder", "decoder"))
    out = str(tmp_path_factory.mktemp(case) / "model")
    config = convert_onnx(enc_path, dec_path, out, source_vocab=SRC, target_vocab=TGT)
    return case, config, rnnsearch.Translator(out), OrtOneHot(enc_path, dec_path)


def _sources(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return [list(rng.integers(1, len(SRC), rng.integers(1, 9))) for _ in range(n)]


def test_config(converted):
    case, config, translator, _ = converted
    assert config["source"]["kind"] == "one_hot"
    assert config["source"]["feature_size"] == len(SRC)
    assert config["encoder"]["embedding_size"] == len(SRC)
    assert config["decoder"]["embedding_size"] == len(TGT)
    assert config["decoder"]["type"] == ("none" if case == "no_attention" else "luong")
    assert translator.source_vocab.tokens == SRC + ["<unk>"]
    assert translator.target_vocab.tokens == TGT + ["<unk>"]
    assert config["special_tokens"]["pad"] == config["special_tokens"]["unk"] == "<unk>"
    assert config["target"]["suppress_tokens"] == ["<unk>"]


@pytest.mark.parametrize("beam_size", [1, 5])
def test_engine_matches_onnxruntime(converted, beam_size):
    _, _, translator, oracle = converted
    assert_engine_matches(translator._engine, _sources(), oracle.search, beam_size, MAX_LENGTH)


def test_one_hot_arrays_decode_as_their_tokens(converted):
    _, _, translator, _ = converted
    ids = [3, 1, 4, 1, 5]
    arrays = translator.translate_features([np.eye(len(SRC), dtype=np.float32)[ids]],
                                           beam_size=2, return_scores=True)
    tokens = translator.translate_batch([[SRC[i] for i in ids]], beam_size=2,
                                        return_scores=True)
    assert arrays[0].hypotheses == tokens[0].hypotheses
    assert arrays[0].scores == tokens[0].scores


class GemmStep(OneHotStep):
    """The one-hot token through nn.Linear(V, 8) with a bias (a Gemm) before the LSTM."""

    def __init__(self):
        super().__init__(attention=True)
        self.embed = torch.nn.Linear(len(TGT), 8)
        self.rnn = torch.nn.LSTM(8, self.rnn.hidden_size, batch_first=True)

    def forward(self, y, h, c, memory=None):
        return super().forward(self.embed(y), h, c, memory)


def test_token_through_a_gemm_with_bias(tmp_path):
    """Gemm(y, W, b): the bias folds into the first layer's; random weights, exported here."""
    torch.manual_seed(3)
    enc_path, dec_path = export_onnx(OneHotEncoder().eval(), GemmStep().eval(), tmp_path)
    config = convert_onnx(enc_path, dec_path, str(tmp_path / "m"), source_vocab=SRC,
                          target_vocab=TGT)
    assert config["decoder"]["embedding_size"] == len(TGT)
    engine, oracle = rnnsearch.Translator(str(tmp_path / "m"))._engine, \
        OrtOneHot(enc_path, dec_path)
    for beam_size in (1, 5):
        assert_engine_matches(engine, _sources(), oracle.search, beam_size, MAX_LENGTH)


# ---- refusals -----------------------------------------------------------------------------
def test_one_hot_input_not_multiplied_is_refused(tmp_path):
    enc_path, dec_path = export_onnx(ReluEncoder().eval(), OneHotStep().eval(), tmp_path)
    with pytest.raises(rnnsearch.ModelError, match=r"encoder graph: the one-hot input 'x' "
                                                   r"reaches encoder node .*\((Sub|Relu)\)"):
        convert_onnx(enc_path, dec_path, str(tmp_path / "m"), source_vocab=SRC,
                     target_vocab=TGT)
    assert not (tmp_path / "m").exists()


def test_one_hot_token_turned_into_ids_is_refused(tmp_path):
    enc_path, dec_path = export_onnx(OneHotEncoder().eval(), OneHotStep(argmax=True).eval(),
                                     tmp_path)
    with pytest.raises(rnnsearch.ModelError, match=r"decoder graph: the one-hot input 'y' "
                                                   r"reaches decoder node .*\(ArgMax\)"):
        convert_onnx(enc_path, dec_path, str(tmp_path / "m"), source_vocab=SRC,
                     target_vocab=TGT)


def test_one_hot_input_without_a_fixed_width_is_refused(tmp_path):
    enc_path, dec_path = export_onnx(OneHotEncoder().eval(), OneHotStep().eval(),
                                     tmp_path, vocab_axis=True)
    with pytest.raises(rnnsearch.ModelError, match=r"float input 'x' .* no fixed size"):
        convert_onnx(enc_path, dec_path, str(tmp_path / "m"), source_vocab=SRC,
                     target_vocab=TGT)


def test_target_vocabulary_of_another_width(tmp_path):
    enc_path, dec_path = export_onnx(OneHotEncoder().eval(), OneHotStep().eval(),
                                     tmp_path)
    with pytest.raises(rnnsearch.ModelError, match=r"one-hot vectors \[batch, 12\]"):
        convert_onnx(enc_path, dec_path, str(tmp_path / "m"), source_vocab=SRC,
                     target_vocab=TGT + ["x"])
