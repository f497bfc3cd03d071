"""Hostile and broken input at the engine (issue 13, items 1-3): sizes that overflow,
non-finite numbers, and model files that change under a live Translator. Everything that
could crash the process runs in a child process, so a crash fails the test instead of
killing the run; everything that depends on the instruction set runs on each of them."""
import shutil
import subprocess
import sys

import numpy as np
import pytest

import rnnsearch
from rnnsearch import limits
from rnnsearch.model_dir import write_model_dir
from rnnsearch.safetensors_io import read_safetensors, write_safetensors

from isa_child import run_on_isa

ISAS = ("portable", "avx2", "avx512")
SRC = "src"


child = run_on_isa   # (the name the attention tests import)


def _copy_with(model, tmp_path, name, change):
    """A copy of the model directory whose tensors went through change(tensors)."""
    path = tmp_path / name
    shutil.copytree(model, path)
    tensors, _ = read_safetensors(str(path / "model.safetensors"))
    tensors = {k: np.array(v) for k, v in tensors.items()}
    change(tensors)
    write_safetensors(str(path / "model.safetensors"), tensors)
    return str(path)


# ---------------------------------------------------------------- 1: sizes

def test_engine_limits_are_the_ones_python_checks():
    from rnnsearch._engine import LIMITS
    assert LIMITS == {"layers": limits.MAX_LAYERS, "width": limits.MAX_WIDTH,
                      "vocabulary": limits.MAX_VOCAB,
                      "source_length": limits.MAX_SOURCE_LENGTH,
                      "decoding_length": limits.MAX_DECODING_LENGTH, "beam": limits.MAX_BEAM,
                      "batch": limits.MAX_BATCH,
                      "block_elements": limits.MAX_BLOCK_ELEMENTS}


def test_huge_beam_times_batch_is_a_value_error_not_a_crash(small_model_dir):
    """The issue's crash: cap = batch x beam overflowed int in rs_search.c."""
    done = child(f"""
        import rnnsearch
        tr = rnnsearch.Translator({small_model_dir!r})
        for kwargs in (dict(beam_size=65536), dict(beam_size=4096)):
            try:
                tr.translate_batch([['s1']] * 65537, max_decoding_length=2, **kwargs)
            except ValueError as e:
                print('ValueError', str(e)[:300])
        # the engine's own check, below the Python one: rows x vocabulary > INT_MAX
        try:
            tr._engine.translate([[5]] * 600000, beam_size=4096, max_length=2)
        except ValueError as e:
            print('engine', e)
    """)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ValueError beam_size must be between 1 and 4096")
    assert lines[1].startswith("ValueError decoding 65537 sentence(s)") and "lower" in lines[1]
    assert lines[2].startswith("engine the batch (600000 sentences) x beam_size (4096) must "
                               "be smaller")


def test_cli_huge_beam_and_batch_is_one_line(small_model_dir):
    done = subprocess.run([sys.executable, "-m", "rnnsearch", "translate", "-m",
                           small_model_dir, "--beam-size", "65536", "--batch-size", "65537",
                           "-q"], input="s1\n" * 3, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "--beam-size must be between" in done.stderr


def test_options_out_of_range_name_the_option(small_model_dir):
    tr = rnnsearch.Translator(small_model_dir)
    cases = [(dict(beam_size=2**31), ValueError, "beam_size"),
             (dict(beam_size="5"), TypeError, "beam_size"),
             (dict(max_decoding_length=2**40), ValueError, "max_decoding_length"),
             (dict(min_decoding_length=-1), ValueError, "min_decoding_length"),
             (dict(num_hypotheses=6), ValueError, "num_hypotheses"),
             (dict(length_penalty=1e39), ValueError, "length_penalty"),
             (dict(length_penalty=float("nan")), ValueError, "length_penalty"),
             (dict(coverage_penalty=float("-inf")), ValueError, "coverage_penalty"),
             (dict(length_penalty="0.6"), TypeError, "length_penalty"),
             (dict(max_batch_size=-1), ValueError, "max_batch_size"),
             (dict(suppress_tokens=[None]), TypeError, "suppress_tokens")]
    for options, error, name in cases:
        with pytest.raises(error, match=name):
            tr.translate_batch([["s1"]], **options)
    for bad in ([None], [["s1"]], "s1", None):
        with pytest.raises(TypeError, match="translate"):
            tr.translate(bad)
    with pytest.raises(TypeError, match="source must be"):
        tr.translate_batch([None])
    with pytest.raises(ValueError, match="intra_threads"):
        rnnsearch.Translator(small_model_dir, intra_threads=2**31)


# ---------------------------------------------------------------- 3: non-finite numbers

@pytest.mark.parametrize("isa", ISAS)
def test_vectorised_functions_propagate_nan(isa):
    """NaN stays NaN; tanh and sigmoid also give NaN for +-inf (an overflowed
    pre-activation, engine/rs_vmath.c), exp(-inf) stays 0 (masked softmax positions)."""
    done = child("""
        import numpy as np
        from rnnsearch._engine import elementwise, kernel_isa
        x = np.array([np.nan, 1.0, -np.inf, np.inf, -100.0, 100.0, 0.0] * 5, np.float32)
        for name in ("exp", "tanh", "sigmoid"):
            y = elementwise(name, x)
            want = np.isnan(x) if name == "exp" else ~np.isfinite(x)
            print(name, kernel_isa(), np.isnan(y).tolist() == want.tolist(),
                  bool(np.isfinite(y[1:]).sum() + np.isnan(y[1:]).sum() == len(y) - 1))
    """, isa)
    assert done.returncode == 0, done.stderr
    for line in done.stdout.splitlines():
        name, used, nan_exactly_where_given, rest_sane = line.split()
        assert nan_exactly_where_given == "True", line
        assert rest_sane == "True", line


@pytest.mark.parametrize("name", ["decoder.output.weight", "decoder.output.bias",
                                  "encoder.embedding.weight", "decoder.embedding.weight",
                                  "attention.v", "encoder.layers.0.forward.weight_hh",
                                  "decoder.readout.weight"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_weights_are_refused_at_load(small_model_dir, tmp_path, name, value):
    def poison(tensors):
        tensors[name].flat[tensors[name].size // 2] = value
    path = _copy_with(small_model_dir, tmp_path, "poisoned", poison)
    for compute_type in ("float32", "int8", "bfloat16"):
        with pytest.raises(rnnsearch.ModelError, match=f"'{name}' holds NaN or infinite"):
            rnnsearch.Translator(path, compute_type=compute_type)


@pytest.mark.parametrize("isa", ISAS)
def test_non_finite_weights_refused_and_overflow_raises_on_every_isa(small_model_dir,
                                                                     tmp_path, isa):
    """NaN weights: ModelError at load; weights of 3e38 (finite, but every product
    overflows): EngineError at translate, never a finite guess, in float32, int8,
    bfloat16 and from an int8 file."""
    from rnnsearch.quantize import quantize_model_dir
    nan = _copy_with(small_model_dir, tmp_path, "nan",
                     lambda t: t["encoder.layers.0.backward.weight_ih"].__setitem__(0, np.nan))
    huge = _copy_with(small_model_dir, tmp_path, "huge",
                      lambda t: t["decoder.output.weight"].__setitem__(slice(None), 3e38))
    quantize_model_dir(huge, str(tmp_path / "huge-int8"))
    done = child(f"""
        import rnnsearch
        for path, compute in (({nan!r}, "float32"), ({nan!r}, "int8"), ({nan!r}, "bfloat16")):
            try:
                rnnsearch.Translator(path, compute_type=compute)
                print("loaded")
            except rnnsearch.ModelError as e:
                print("ModelError", "weight_ih" in str(e))
        for path, compute in (({huge!r}, "float32"), ({huge!r}, "int8"), ({huge!r}, "bfloat16"),
                              ({str(tmp_path / "huge-int8")!r}, "int8"),
                              ({str(tmp_path / "huge-int8")!r}, "float32")):
            tr = rnnsearch.Translator(path, compute_type=compute)
            try:
                r = tr.translate_batch([["s1", "s2"]], beam_size=2, return_scores=True)
                print("translated", r[0].scores)
            except rnnsearch.EngineError as e:
                print("EngineError", "non-finite" in str(e))
    """, isa)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:-1] == ["ModelError True"] * 3 + ["EngineError True"] * 5


@pytest.mark.parametrize("isa", ISAS)
def test_gate_overflow_raises_instead_of_saturating_on_every_isa(small_model_dir, tmp_path,
                                                                 isa):
    """Finite weights whose gate products all overflow the same way (embeddings 1, input
    weights 3e38: every pre-activation is +inf, no inf - inf to make a NaN). Real
    arithmetic cannot be followed in float32 here; sigmoid/tanh would squash +inf into a
    plausible 1 and give a finite translation that depends on the instruction set, so
    the engine reports EngineError on every one."""
    def overflow_gates(tensors):
        for name, value in tensors.items():
            if name.endswith("embedding.weight") or name.endswith("embeddings.weight"):
                value[:] = 1.0
            elif name.startswith("encoder.") and name.endswith("weight_ih"):
                value[:] = 3e38
    path = _copy_with(small_model_dir, tmp_path, "gates", overflow_gates)
    done = child(f"""
        import rnnsearch
        for compute in ("float32", "int8"):
            tr = rnnsearch.Translator({path!r}, compute_type=compute)
            try:
                tr.translate_batch([["s1", "s2"]], beam_size=2)
                print("translated")
            except rnnsearch.EngineError as e:
                print("EngineError", "non-finite" in str(e))
    """, isa)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:-1] == ["EngineError True"] * 2


def test_nan_inside_the_network_reaches_the_scores(small_model_dir, tmp_path):
    """A NaN that appears mid-network, not in the weights: attention scores overflow to
    inf, the softmax computes inf - inf. The old clamped exp turned that NaN into a
    finite, uniform attention and so a finite, wrong translation."""
    def overflow_scores(tensors):   # tanh(q + k) = 1 everywhere, v . 1 = +inf
        tensors["attention.key.bias"][:] = 1e6
        tensors["attention.v"][:] = 3e38
    path = _copy_with(small_model_dir, tmp_path, "scores", overflow_scores)
    for compute_type in ("float32", "int8", "bfloat16"):
        tr = rnnsearch.Translator(path, compute_type=compute_type)
        with pytest.raises(rnnsearch.EngineError, match="non-finite"):
            tr.translate_batch([["s1", "s2", "s3"]], beam_size=3)


def test_quantize_and_conversion_refuse_non_finite_weights(small_model_dir, tmp_path):
    from rnnsearch.model_dir import load_model_dir
    from rnnsearch.quantize import quantize_model_dir, quantize_tensors
    files = load_model_dir(small_model_dir)
    tensors = {k: np.array(v) for k, v in files.tensors.items()}
    tensors["decoder.output.weight"][3, 2] = np.nan
    with pytest.raises(rnnsearch.ModelError, match="'decoder.output.weight' holds NaN"):
        quantize_tensors(tensors)
    with pytest.raises(rnnsearch.ModelError, match="'decoder.output.weight' holds NaN"):
        write_model_dir(str(tmp_path / "out"), files.config, tensors,
                        files.source_vocab.tokens, files.target_vocab.tokens)
    assert not (tmp_path / "out").exists()
    poisoned = _copy_with(small_model_dir, tmp_path, "p",
                          lambda t: t["decoder.output.bias"].__setitem__(0, np.inf))
    with pytest.raises(rnnsearch.ModelError, match="'decoder.output.bias' holds NaN"):
        quantize_model_dir(poisoned, str(tmp_path / "q"))


# ---------------------------------------------------------------- 2: files changed on disk

@pytest.mark.parametrize("isa", ISAS)
def test_model_file_changed_under_a_live_translator(small_model_dir, tmp_path, isa):
    """`cp new old` truncates the weights file in place, an in-place write changes its
    bytes: a loaded Translator must neither crash (SIGBUS) nor change its outputs."""
    from rnnsearch.quantize import quantize_model_dir
    other = _copy_with(small_model_dir, tmp_path, "other",
                       lambda t: [v.__imul__(-1.5) for v in t.values()])
    quantize_model_dir(small_model_dir, str(tmp_path / "int8"))
    cases = [(small_model_dir, "float32"), (small_model_dir, "int8"),
             (str(tmp_path / "int8"), "int8"), (str(tmp_path / "int8"), "float32"),
             (small_model_dir, "bfloat16"), (str(tmp_path / "int8"), "bfloat16")]
    done = child(f"""
        import os, shutil
        import rnnsearch
        sources = [["s1", "s2", "s3"], ["s4"], ["s5", "s6", "s7", "s8"]]
        for index, (model, compute) in enumerate({cases!r}):
            path = os.path.join({str(tmp_path)!r}, f"live{{index}}")
            shutil.copytree(model, path)
            tr = rnnsearch.Translator(path, compute_type=compute)
            before = tr.translate_batch(sources, beam_size=3, return_scores=True)
            weights = os.path.join(path, "model.safetensors")
            with open(weights, "r+b") as f:      # what `cp new old` does first
                f.truncate(0)
            after_truncate = tr.translate_batch(sources, beam_size=3, return_scores=True)
            with open(os.path.join({other!r}, "model.safetensors"), "rb") as f:
                new = f.read()
            with open(weights, "r+b") as f:      # then the new bytes, in place
                f.write(new)
            after_write = tr.translate_batch(sources, beam_size=3, return_scores=True)
            os.unlink(weights)
            after_delete = tr.translate_batch(sources, beam_size=3, return_scores=True)
            same = all((a.hypotheses, a.scores) == (b.hypotheses, b.scores)
                       for later in (after_truncate, after_write, after_delete)
                       for a, b in zip(before, later))
            print(compute, same)
    """, isa)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.split() == ["float32", "True", "int8", "True", "int8", "True",
                                   "float32", "True", "bfloat16", "True", "bfloat16", "True"]
