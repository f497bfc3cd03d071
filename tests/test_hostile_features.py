"""Hostile and broken input for models over feature frames (issues 13 and 15): the source
stage's weights go through the engine's checked copies (NaN/inf refused, naming the
tensor), its sizes are bounded like the other widths (feature_size, projections, the
subsampling factors and the widths frame stacking makes), and translate_features checks
and chunks its batch as translate_batch does."""
import copy
import os

import numpy as np
import pytest

import rnnsearch
from rnnsearch import limits
from rnnsearch.model_dir import write_model_dir
from rnnsearch.model_spec import normalize_config
from rnnsearch.random_model import random_tensors, vocabularies

F, V_TARGET = 5, 12
CONFIG = {"format": "rnnsearch-model", "format_version": 1,
          "source": {"kind": "features", "feature_size": F, "vocabulary": None},
          "encoder": {"cell": "lstm", "hidden_size": 6, "num_layers": 2,
                      "bidirectional": True, "subsample": [1, 2, 1],
                      "subsample_mode": "stride", "input_projection": {"size": 4},
                      "projection": {"size": 6}},
          "bridge": {"type": "mean", "activation": "identity", "lstm_cell": "bridged"},
          "attention": {"score": "additive", "size": 5, "score_activation": "relu",
                        "gate": True, "gate_per_dimension": True},
          "decoder": {"type": "bahdanau", "embedding_size": 4, "cell": "lstm",
                      "hidden_size": 8, "readout_inputs": ["state"]}}


def _write(path, change=None, config=CONFIG):
    tensors = random_tensors(copy.deepcopy(config), 0, V_TARGET, seed=3)
    if change:
        change(tensors)
    write_model_dir(str(path), copy.deepcopy(config), tensors, None,
                    vocabularies(4, V_TARGET)[1])
    return str(path)


def _frames(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, F)).astype(np.float32) for n in lengths]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return rnnsearch.Translator(_write(tmp_path_factory.mktemp("features")))


@pytest.mark.parametrize("name", ["encoder.input_projection.weight",
                                  "encoder.input_projection.bias",
                                  "encoder.layers.1.projection.weight",
                                  "attention.gate.weight", "attention.gate.bias"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_source_stage_weights_are_refused_by_name(tmp_path, name, value):
    def poison(tensors):
        assert name in tensors
        tensors[name] = np.array(tensors[name])
        tensors[name].reshape(-1)[-1] = value
    # write_model_dir refuses them too; write the file as a converter bug would
    path = _write(tmp_path / "clean")
    from rnnsearch.safetensors_io import read_safetensors, write_safetensors
    tensors, _ = read_safetensors(path + "/model.safetensors")
    tensors = {k: np.array(v) for k, v in tensors.items()}
    poison(tensors)
    write_safetensors(path + "/model.safetensors", tensors)
    with pytest.raises(rnnsearch.ModelError, match=name.replace(".", r"\.")):
        rnnsearch.Translator(path)


def _normalized(**encoder):
    config = copy.deepcopy(CONFIG)
    config["encoder"].update(encoder)
    return normalize_config(config)


@pytest.mark.parametrize("change, field", [
    (lambda c: c["source"].update(feature_size=limits.MAX_WIDTH + 1), "source.feature_size"),
    (lambda c: c["source"].update(feature_size=10**18), "source.feature_size"),
    (lambda c: c["encoder"].update(input_projection={"size": 10**9}),
     "encoder.input_projection.size"),
    (lambda c: c["encoder"].update(projection={"size": limits.MAX_WIDTH + 1}),
     "encoder.projection.size"),
    (lambda c: c["encoder"].update(subsample=[1, 10**6, 1]), r"encoder.subsample\[1\]"),
    (lambda c: c["encoder"].update(num_layers=limits.MAX_LAYERS + 1,
                                   subsample=None), "encoder.num_layers"),
    # frame stacking multiplies the width: 2 x 6 x 64 x 64 per position is too wide
    (lambda c: c["encoder"].update(subsample=[64, 64, 64], subsample_mode="concat",
                                   projection=None, input_projection=None,
                                   hidden_size=limits.MAX_WIDTH // 64),
     r"encoder.subsample\[\d\]"),
])
def test_source_stage_sizes_are_bounded(change, field):
    config = copy.deepcopy(CONFIG)
    change(config)
    with pytest.raises(rnnsearch.ModelError, match=field):
        normalize_config(config)


def test_translate_features_chunks_like_translate_batch(model):
    frames = _frames([9, 4, 12, 6, 2, 7])
    whole = model.translate_features(frames, beam_size=3, return_scores=True)
    chunked = model.translate_features(frames, beam_size=3, return_scores=True,
                                       max_batch_size=2)
    assert [r.hypotheses for r in chunked] == [r.hypotheses for r in whole]
    assert [r.scores for r in chunked] == [r.scores for r in whole]
    steps = []
    model.translate_features(frames, beam_size=1, max_decoding_length=3, max_batch_size=4,
                             callback=lambda step: steps.append(step.batch_id))
    assert sorted(set(steps)) == list(range(len(frames)))   # numbered over the whole call


@pytest.mark.parametrize("options, error, message", [
    (dict(max_batch_size=-1), ValueError, "max_batch_size must be between"),
    (dict(max_batch_size=limits.MAX_BATCH + 1), ValueError, "max_batch_size must be between"),
    (dict(max_batch_size=1.5), TypeError, "max_batch_size must be an integer"),
    (dict(beam_size=limits.MAX_BEAM + 1), ValueError, "beam_size must be between"),
    (dict(max_decoding_length=limits.MAX_DECODING_LENGTH + 1), ValueError,
     "max_decoding_length must be between"),
    (dict(callback="print"), TypeError, "callback must be callable"),
    (dict(length_penalty=float("nan")), ValueError, "length_penalty must be a finite"),
])
def test_translate_features_options_are_bounded(model, options, error, message):
    with pytest.raises(error, match=message):
        model.translate_features(_frames([6]), **options)


def test_a_batch_too_big_for_memory_is_a_value_error(model):
    """check_decoding_size before the engine allocates: batch x beam x frames."""
    frames = _frames([1024]) * 2000
    with pytest.raises(ValueError, match="lower the batch size"):
        model.translate_features(frames, beam_size=limits.MAX_BEAM, max_decoding_length=4)


def test_feature_files_must_be_regular_files(tmp_path):
    from rnnsearch.cli_features import read_feature_files
    fifo = tmp_path / "fifo.npy"
    os.mkfifo(fifo)
    for path in (str(tmp_path), str(fifo)):   # a FIFO must not wait for a writer
        with pytest.raises(ValueError, match="is not a regular file"):
            read_feature_files([path])


def test_an_archive_bigger_than_memory_is_refused_unread(tmp_path, monkeypatch):
    from rnnsearch import cli_features, npy_files
    path = str(tmp_path / "frames.npz")
    np.savez_compressed(path, a=np.zeros((1000, F), np.float32))   # 20 kB unpacked
    monkeypatch.setattr(npy_files, "physical_memory", lambda: 10_000)
    with pytest.raises(ValueError, match="unpacks to 20.* bytes, more than this machine"):
        cli_features.read_feature_files([path])


def test_copy_attention_needs_token_sources():
    # copy attention copies source tokens: a feature source has none, and the default
    # search would silently decode without the copy generator (found by the fuzzer)
    config = copy.deepcopy(CONFIG)
    config["copy"] = {"reuse_attention": True}
    with pytest.raises(rnnsearch.ModelError, match="source.kind 'ids'"):
        normalize_config(config)
