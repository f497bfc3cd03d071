"""int8 weights stored in the model file (rnnsearch convert --quantize int8)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import rnnsearch
from rnnsearch.cli import main as cli_main
from rnnsearch.quantize import quantize_model_dir, quantize_rows
from rnnsearch.random_model import write_random_model
from rnnsearch.safetensors_io import read_safetensors, write_safetensors

from conftest import SMALL_CONFIG

# GRU without reset_after splits W_hh into row views; LSTM has a bridged cell state
CONFIGS = {
    "gru-reset-before": dict(SMALL_CONFIG, encoder=dict(SMALL_CONFIG["encoder"],
                                                        gru_reset_after=False)),
    "luong-lstm": {"format": "rnnsearch-model", "format_version": 1,
                   "encoder": {"embedding_size": 8, "cell": "lstm", "hidden_size": 12,
                               "num_layers": 2, "bidirectional": True},
                   "bridge": {"type": "dense", "lstm_cell": "bridged"},
                   "attention": {"score": "general"},
                   "decoder": {"type": "luong", "embedding_size": 8, "cell": "lstm",
                               "hidden_size": 24, "num_layers": 2, "input_feeding": True}},
}


def _sources(n=24):
    rng = np.random.default_rng(7)
    return [[f"s{i}" for i in rng.integers(0, 26, size=1 + k % 11)] for k in range(n)]


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def model_pair(request, tmp_path_factory):
    base = tmp_path_factory.mktemp(request.param)
    float_dir, int8_dir = str(base / "f32"), str(base / "int8")
    write_random_model(float_dir, CONFIGS[request.param], 30, 25, seed=3)
    quantize_model_dir(float_dir, int8_dir)
    return float_dir, int8_dir


def test_rounding_matches_the_engine_quantizer():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((19, 37)).astype(np.float32)
    w[3] = 0.0                                  # an all-zero row gets scale 1
    q, scale = quantize_rows(w)
    assert q.dtype == np.int8 and scale.dtype == np.float32 and scale[3] == 1.0
    assert np.abs(q).max() == 127
    np.testing.assert_allclose(q * scale[:, None], w, atol=float(scale.max()) / 2 + 1e-7)


def test_file_is_smaller_and_decodes_exactly_like_load_time_int8(model_pair):
    float_dir, int8_dir = model_pair
    f32_size = os.path.getsize(os.path.join(float_dir, "model.safetensors"))
    int8_size = os.path.getsize(os.path.join(int8_dir, "model.safetensors"))
    assert int8_size < 0.6 * f32_size
    sources = _sources()
    for beam in (1, 5):
        options = dict(beam_size=beam, num_hypotheses=beam, return_scores=True,
                       max_decoding_length=40)
        at_load = rnnsearch.Translator(float_dir, compute_type="int8").translate_batch(
            sources, **options)
        stored = rnnsearch.Translator(int8_dir, compute_type="int8").translate_batch(
            sources, **options)
        for a, b in zip(at_load, stored):
            assert a.hypotheses == b.hypotheses and a.scores == b.scores


def test_float32_compute_dequantizes(model_pair):
    """compute_type float32 on an int8 directory runs the dequantized weights: the same
    tokens as the PyTorch reference reading that directory."""
    pytest.importorskip("torch")
    from rnnsearch.reference import load_model_dir
    from rnnsearch.reference.search import translate
    _, int8_dir = model_pair
    model, bos, eos = load_model_dir(int8_dir)
    translator = rnnsearch.Translator(int8_dir)
    sources = _sources(8)
    engine = translator.translate_batch(sources, beam_size=3, max_decoding_length=40,
                                        return_scores=True)
    for tokens, result in zip(sources, engine):
        ids = [translator.source_vocab.ids[t] for t in tokens]
        best = translate(model, ids, bos, eos, beam_size=3, max_decoding_length=40)[0]
        assert [translator.target_vocab.tokens[i] for i in best.tokens] == result.hypotheses[0]
        assert abs(best.score - result.scores[0]) < 1e-4


_OTHER_ISA_CHECK = """
import sys, rnnsearch
from rnnsearch._engine import kernel_isa
float_dir, int8_dir = sys.argv[1:3]
src = [["s1", "s2", "s3"], ["s4"], ["s5", "s6", "s7", "s8", "s9", "s10", "s11"]]
a = rnnsearch.Translator(float_dir, compute_type="int8").translate_batch(src, return_scores=True)
b = rnnsearch.Translator(int8_dir, compute_type="int8").translate_batch(src, return_scores=True)
assert [r.hypotheses for r in a] == [r.hypotheses for r in b]
assert [r.scores for r in a] == [r.scores for r in b]
print(kernel_isa("int8"))
"""


@pytest.mark.parametrize("isa", ["avx2", "portable"])
def test_stored_int8_on_other_kernels(model_pair, isa):
    done = subprocess.run([sys.executable, "-c", _OTHER_ISA_CHECK, *model_pair],
                          env=dict(os.environ, RNNSEARCH_ISA=isa), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_convert_cli_quantize(tmp_path):
    """`rnnsearch convert --quantize int8` on a real conversion (a PyTorch state dict)."""
    pytest.importorskip("torch")
    from test_convert_torch import _files, _sources as id_sources
    _, args = _files(tmp_path, "luong")
    assert cli_main(args + ["-o", str(tmp_path / "f32")]) == 0
    assert cli_main(args + ["-o", str(tmp_path / "q"), "--quantize", "int8"]) == 0
    tensors, _ = read_safetensors(str(tmp_path / "q" / "model.safetensors"))
    assert tensors["decoder.output.weight"].dtype == np.int8
    assert tensors["decoder.embedding.weight"].dtype == np.float32
    sources = id_sources(8)
    a = rnnsearch.Translator(str(tmp_path / "f32"), compute_type="int8")._engine.translate(
        sources, beam_size=3, max_length=30)
    b = rnnsearch.Translator(str(tmp_path / "q"), compute_type="int8")._engine.translate(
        sources, beam_size=3, max_length=30)
    assert [[h[:2] for h in r] for r in a] == [[h[:2] for h in r] for r in b]


def test_bad_int8_files_are_clear_errors(model_pair, tmp_path):
    _, int8_dir = model_pair
    tensors, _ = read_safetensors(os.path.join(int8_dir, "model.safetensors"))
    tensors = {k: np.array(v) for k, v in tensors.items()}
    name = "decoder.output.weight"
    cases = {
        "no '" + name + "_scale'": {k: v for k, v in tensors.items() if k != name + "_scale"},
        "non-positive": dict(tensors, **{name + "_scale": np.zeros_like(tensors[name + "_scale"])}),
        "expected float32 \\[25\\]": dict(tensors, **{name + "_scale": tensors[name + "_scale"][:3]}),
        "expected float32$": dict(tensors, **{"decoder.embedding.weight": tensors[
            "decoder.embedding.weight"].astype(np.int8)}),
    }
    for message, broken in cases.items():
        bad = tmp_path / "bad"
        import shutil
        shutil.copytree(int8_dir, bad, dirs_exist_ok=True)
        write_safetensors(str(bad / "model.safetensors"), broken)
        with pytest.raises(rnnsearch.ModelError, match=message):
            rnnsearch.Translator(str(bad))


def test_inspect_reports_int8(model_pair, capsys):
    float_dir, int8_dir = model_pair
    assert cli_main(["inspect", int8_dir]) == 0
    quantized = capsys.readouterr().out
    assert cli_main(["inspect", float_dir]) == 0
    original = capsys.readouterr().out
    weights = lambda text: text.split("parameters: ")[1].splitlines()[0]  # noqa: E731
    assert "int8 with per-row scales" in weights(quantized) and "int8" not in weights(original)
    # the kernels line names every compute type's kernel on this CPU
    assert "kernels:    float32 " in original and ", bfloat16 " in original
    # same parameter count: the scales are not parameters
    count = lambda text: text.split("parameters: ")[1].split(" ")[0]  # noqa: E731
    assert count(quantized) == count(original)


_PARTS_BASE = {"format": "rnnsearch-model", "format_version": 1,
               "encoder": {"embedding_size": 8, "cell": "gru", "hidden_size": 10,
                           "bidirectional": True},   # memory width D = 20
               "bridge": {"type": "dense"}}
# decoder -> the int8 activation parts the format's concatenations imply (E = 6, H = 14)
_PARTS = [
    ({"score": "additive", "size": 9},
     {"type": "bahdanau", "embedding_size": 6, "cell": "gru", "hidden_size": 14,
      "readout": "maxout", "readout_size": 16},
     {"decoder.layers.0.ih": [6], "decoder.readout": [14, 34]}),   # [y; c], [s; c; y]
    ({"score": "additive", "size": 9},
     {"type": "bahdanau", "embedding_size": 6, "cell": "gru", "hidden_size": 14,
      "readout": "tanh", "readout_size": 16, "readout_inputs": ["context", "embedding"]},
     {"decoder.layers.0.ih": [6], "decoder.readout": [20]}),       # [c; y]
    ({"score": "general"},
     {"type": "luong", "embedding_size": 6, "cell": "lstm", "hidden_size": 14,
      "input_feeding": True, "attentional_layer": True},
     {"decoder.layers.0.ih": [6], "decoder.attentional": [20]}),   # [y; h~], [c; s]
    ({"score": "general"},
     {"type": "luong", "embedding_size": 6, "cell": "lstm", "hidden_size": 14,
      "input_feeding": False, "attentional_layer": True},
     {"decoder.attentional": [20]}),                               # layer 0 reads y only
]


@pytest.mark.parametrize("case", range(len(_PARTS)))
def test_int8_gives_each_concatenated_part_its_own_scale(tmp_path, case):
    attention, decoder, expected = _PARTS[case]
    config = dict(_PARTS_BASE, attention=attention, decoder=decoder)
    write_random_model(str(tmp_path), config, 30, 25, seed=1)
    tr = rnnsearch.Translator(str(tmp_path), compute_type="int8")
    assert tr._engine.int8_input_parts() == expected
