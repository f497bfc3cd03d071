"""Hostile and broken input for the attention types, their options and encoder pooling
(issue 13 applied to what att-local added): option sizes beyond the limits, NaN and
infinity in every new tensor, weights that overflow float32 behind a selection (local-p's
window, the monotonic threshold, hard argmax), and the new tensors' files changed under a
live Translator. Whatever could crash runs in a child process (test_hostile_engine.child)."""
import shutil

import numpy as np
import pytest

import rnnsearch
from rnnsearch.random_model import write_random_model
from test_hostile_engine import ISAS, _copy_with, child
from test_model_dir import _edit_config

MEMORY = 16   # bidirectional concat of hidden 8


def _config(attention, bridge="zeros", pooling=None, decoder="bahdanau"):
    encoder = {"embedding_size": 6, "cell": "gru", "hidden_size": 8, "bidirectional": True}
    if pooling:
        encoder["pooling"] = pooling
    decoder_section = {"type": decoder, "embedding_size": 6, "cell": "gru",
                       "hidden_size": MEMORY}
    if decoder == "bahdanau":
        decoder_section.update(readout="tanh", readout_size=10)
    return {"format": "rnnsearch-model", "format_version": 1, "encoder": encoder,
            "bridge": {"type": bridge}, "attention": attention, "decoder": decoder_section}


ADDITIVE = {"score": "additive", "size": 8}
SPLIT = {"split": 8}   # keys: the forward encoder's half of the memory, values: the backward
MODELS = {
    # local-p (Luong: the new state is the query) with every option that reads a tensor,
    # and a pooling bridge
    "local": _config({"type": "local", **ADDITIVE, "gate": True,
                      "key_value": {"split": 10, "value_size": 7},
                      "local": {"mode": "predictive", "window": 2, "position_size": 5,
                                "edges": "zero_pad"}},
                     bridge="pooling", pooling={"rows": 2, "size": 4}, decoder="luong"),
    "mocha": _config({"type": "mocha", **ADDITIVE, "key_value": SPLIT,
                      "mocha": {"chunk_size": 2, "size": 6}}),
    "monotonic": _config({"type": "monotonic", **ADDITIVE, "key_value": SPLIT}),
    "hard": _config({**ADDITIVE, "hard": True, "key_value": SPLIT}),
}
SOURCES = [["s1", "s2", "s3"], ["s4"], ["s5", "s6", "s7", "s8", "s9"]]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("attention-models")
    paths = {}
    for name, config in MODELS.items():
        paths[name] = str(root / name)
        write_random_model(paths[name], config, 20, 15, seed=3)
    # the scalars and gains the options may carry
    def extras(tensors):
        tensors["attention.energy_bias"] = np.array([0.5], np.float32)
        tensors["attention.energy_gain"] = np.array([2.0], np.float32)
    paths["monotonic"] = _copy_with(paths["monotonic"], root, "monotonic-extras", extras)
    return paths


@pytest.mark.parametrize("change, field", [
    (lambda c: c["attention"]["local"].update(position_size=2**40),
     "attention.local.position_size"),
    (lambda c: c["attention"]["local"].update(window=10**9), "attention.local.window"),
    (lambda c: c["attention"]["local"].update(window=[1]), "attention.local.window"),
    (lambda c: c["attention"]["key_value"].update(value_size=65537),
     "attention.key_value.value_size"),
    (lambda c: c["encoder"]["pooling"].update(size=True), "encoder.pooling.size"),
    (lambda c: c["encoder"]["pooling"].update(rows=2**20), "encoder.pooling.rows"),
    (lambda c: c["attention"].update(local="x" * 10**6), "attention.local"),
    (lambda c: c["attention"]["local"].update({"k" * 10**5: 1}), "attention.local"),
])
def test_option_sizes_beyond_the_limits_are_model_errors(models, tmp_path, change, field):
    path = str(tmp_path / "model")
    shutil.copytree(models["local"], path)
    _edit_config(path, change)
    with pytest.raises(rnnsearch.ModelError, match=field) as error:
        rnnsearch.Translator(path)
    assert len(str(error.value)) < 500   # a huge value is not echoed whole


@pytest.mark.parametrize("model, name", [
    ("local", "attention.gate.weight"), ("local", "attention.gate.bias"),
    ("local", "attention.position.v"), ("local", "attention.position.weight"),
    ("local", "attention.value.weight"), ("local", "encoder.pooling.query.weight"),
    ("local", "encoder.pooling.projection.bias"),
    ("mocha", "attention.chunk.v"), ("mocha", "attention.chunk.key.weight"),
    ("monotonic", "attention.energy_bias"), ("monotonic", "attention.energy_gain"),
])
def test_non_finite_option_tensors_are_refused_at_load(models, tmp_path, model, name):
    path = _copy_with(models[model], tmp_path, "poisoned",
                      lambda t: t[name].__setitem__((0,) * t[name].ndim, np.nan))
    for compute_type in ("float32", "int8"):
        with pytest.raises(rnnsearch.ModelError, match=f"'{name}' holds NaN or infinite"):
            rnnsearch.Translator(path, compute_type=compute_type)


def _nan_from(tensors, embedding, weight_ih):
    """Finite weights whose products overflow: every embedding value 3e38, the input
    weights +-3e38 alternating along each row, so that each row sums +inf and -inf: NaN.
    That takes the portable kernel: the FMA kernels fold each product into the running sum
    before rounding, so the sum saturates at the first product's infinity (and the gates
    squash it to a finite state), and int8 quantizes the activations first."""
    tensors[embedding][:] = 3e38
    w = tensors[weight_ih]
    w[:] = np.where(np.arange(w.shape[1]) % 2, 3e38, -3e38)


# where the NaN starts, and what the type's selection would have hidden it behind
OVERFLOWS = {
    # the decoder state, so local-p's position p_t (a window at NaN indexed INT_MIN)
    "local": ("decoder.embedding.weight", "decoder.layers.0.weight_ih"),
    # the forward encoder, so the keys (split) but not the values: a NaN energy never
    # passes the threshold, argmax skips NaN scores, and a finite context came out
    "monotonic": ("encoder.embedding.weight", "encoder.layers.0.forward.weight_ih"),
    "mocha": ("encoder.embedding.weight", "encoder.layers.0.forward.weight_ih"),
    "hard": ("encoder.embedding.weight", "encoder.layers.0.forward.weight_ih"),
}


def test_nan_behind_a_selection_raises(models, tmp_path):
    """A NaN score must not be hidden by what a type selects, nor crash it: EngineError,
    with greedy and beam search (the portable kernel, see _nan_from)."""
    isa = "portable"
    paths = {model: _copy_with(models[model], tmp_path, model,
                               lambda t, where=where: _nan_from(t, *where))
             for model, where in OVERFLOWS.items()}
    done = child(f"""
        import rnnsearch
        for model, path in {paths!r}.items():
            for compute in ("float32",):
                tr = rnnsearch.Translator(path, compute_type=compute)
                for beam in (1, 3):
                    try:
                        tr.translate_batch({SOURCES!r}, beam_size=beam, return_scores=True)
                        print(model, "translated")
                    except rnnsearch.EngineError as e:
                        print(model, "non-finite" in str(e))
    """, isa)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.split() == [word for model in OVERFLOWS for word in (model, "True") * 2]


@pytest.mark.parametrize("isa", ISAS)
def test_infinite_scores_under_hard_attention_raise_on_every_isa(models, tmp_path, isa):
    """Scores of +inf (tanh(q + k) = 1 everywhere, v . 1 overflows) make the softmax NaN;
    argmax used to skip the NaN weights and copy the first value: a finite, wrong
    context. Now EngineError, in float32 and int8."""
    def infinite_scores(tensors):
        tensors["attention.key.bias"][:] = 1e6
        tensors["attention.v"][:] = 3e38
    path = _copy_with(models["hard"], tmp_path, "inf-scores", infinite_scores)
    done = child(f"""
        import rnnsearch
        for compute in ("float32", "int8"):
            tr = rnnsearch.Translator({path!r}, compute_type=compute)
            for beam in (1, 3):
                try:
                    tr.translate_batch({SOURCES!r}, beam_size=beam)
                    print("translated")
                except rnnsearch.EngineError as e:
                    print("non-finite" in str(e))
    """, isa)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.split() == ["True"] * 4


def test_non_finite_embeddings_raise(models, tmp_path):
    def infinite_scores(tensors):   # tanh(W h + b) = 1 everywhere, Q . 1 overflows
        tensors["encoder.pooling.projection.bias"][:] = 1e6
        tensors["encoder.pooling.query.weight"][:] = 3e38
    path = _copy_with(models["local"], tmp_path, "huge-pooling", infinite_scores)
    tr = rnnsearch.Translator(path)
    with pytest.raises(rnnsearch.EngineError, match="non-finite embeddings"):
        tr.encode(SOURCES)
    assert tr.encode([]) == []
    with pytest.raises(ValueError, match="empty"):
        tr.encode([["s1"], []])


def test_callback_must_be_callable(models):
    tr = rnnsearch.Translator(models["hard"])
    with pytest.raises(TypeError, match="callback must be callable"):
        tr.translate_batch(SOURCES, beam_size=1, callback=3)
    # chunked engine calls still report the caller's sentence index
    seen = set()
    tr.translate_batch(SOURCES, beam_size=1, max_batch_size=1, max_decoding_length=3,
                       callback=lambda step: seen.add(step.batch_id))
    assert seen == {0, 1, 2}


@pytest.mark.parametrize("isa", ISAS)
def test_option_tensors_changed_under_a_live_translator(models, tmp_path, isa):
    """Every tensor of the options and of pooling is the engine's own copy: truncating,
    rewriting and deleting model.safetensors changes neither translations nor
    embeddings."""
    other = _copy_with(models["local"], tmp_path, "other",
                       lambda t: [v.__imul__(-1.5) for v in t.values()])
    done = child(f"""
        import os, shutil
        import numpy as np
        import rnnsearch
        sources = {SOURCES!r}
        for model in ({models["local"]!r}, {models["monotonic"]!r}, {models["mocha"]!r}):
            for compute in ("float32", "int8"):
                path = os.path.join({str(tmp_path)!r}, "live-" + os.path.basename(model) + compute)
                shutil.copytree(model, path)
                tr = rnnsearch.Translator(path, compute_type=compute)
                pools = tr.config["encoder"]["pooling"] is not None
                def outputs():
                    r = tr.translate_batch(sources, beam_size=3, return_scores=True,
                                           return_attention=True)
                    e = tr.encode(sources) if pools else []
                    return ([(x.hypotheses, x.scores, [a.tolist() for a in x.attention])
                             for x in r], [v.tolist() for v in e])
                before = outputs()
                weights = os.path.join(path, "model.safetensors")
                with open(weights, "r+b") as f:
                    f.truncate(0)
                same = outputs() == before
                with open(os.path.join({other!r}, "model.safetensors"), "rb") as f:
                    new = f.read()
                with open(weights, "r+b") as f:
                    f.write(new)
                same = same and outputs() == before
                os.unlink(weights)
                print(same and outputs() == before)
    """, isa)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.split() == ["True"] * 6
