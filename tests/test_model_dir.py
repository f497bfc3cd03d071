"""Loading validates everything and names the culprit (docs/model-format.md)."""
import json
import os
import shutil

import numpy as np
import pytest

import rnnsearch
from rnnsearch import ModelError
from rnnsearch.model_dir import load_model_dir, write_model_dir
from rnnsearch.safetensors_io import read_safetensors, write_safetensors


@pytest.fixture
def model_copy(small_model_dir, tmp_path):
    path = str(tmp_path / "model")
    shutil.copytree(small_model_dir, path)
    return path


def _edit_config(path, edit):
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    edit(config)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)


def _edit_tensors(path, edit):
    weights = os.path.join(path, "model.safetensors")
    tensors, _ = read_safetensors(weights)
    tensors = {k: np.array(v) for k, v in tensors.items()}
    edit(tensors)
    write_safetensors(weights, tensors)


def test_valid_model_loads_and_roundtrips(small_model_dir, tmp_path):
    files = load_model_dir(small_model_dir)
    copy = str(tmp_path / "copy")
    write_model_dir(copy, files.config, dict(files.tensors), files.source_vocab.tokens,
                    files.target_vocab.tokens)
    again = load_model_dir(copy)
    assert again.config == files.config
    for name, value in files.tensors.items():
        np.testing.assert_array_equal(again.tensors[name], value)


def test_weights_are_memory_mapped(small_model_dir):
    files = load_model_dir(small_model_dir)
    assert all(isinstance(t.base, np.memmap) or isinstance(t, np.memmap) or
               isinstance(getattr(t.base, "base", None), np.memmap)
               for t in files.tensors.values())


def test_weights_file_is_plain_safetensors(small_model_dir):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    theirs = safetensors_numpy.load_file(os.path.join(small_model_dir, "model.safetensors"))
    ours, _ = read_safetensors(os.path.join(small_model_dir, "model.safetensors"))
    assert set(theirs) == set(ours)
    for name in ours:
        np.testing.assert_array_equal(theirs[name], ours[name])


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(format_version=2), "format_version"),
    (lambda c: c.update(format="other"), "format"),
    (lambda c: c["encoder"].update(cell="sru"), "encoder.cell"),
    (lambda c: c["encoder"].update(hidden_size=-3), "encoder.hidden_size"),
    (lambda c: c["encoder"].update(colour="blue"), "colour"),
    (lambda c: c.update(extra=1), "extra"),
    (lambda c: c["decoder"].pop("cell"), "decoder.cell"),
    (lambda c: c["attention"].update(score="location"), "attention.score"),
    (lambda c: c["encoder"].update(hidden_size=17), "shape"),
    (lambda c: c["special_tokens"].update(eos="<end>"), "special_tokens.eos"),
    (lambda c: c["decoder"].update(readout_size=21), "even"),
    (lambda c: c["decoder"].update(attentional_activation="relu"),
     "decoder.attentional_activation"),
    (lambda c: c["decoder"].update(attentional_activation="identity"),  # bahdanau
     "decoder.attentional_activation"),
    (lambda c: c.setdefault("bridge", {}).update({"type": "mean", "from": "all_layers"}),
     "bridge.from"),
])
def test_bad_config_is_named(model_copy, edit, message):
    _edit_config(model_copy, edit)
    with pytest.raises(ModelError, match=message.replace(".", r"\.")):
        load_model_dir(model_copy)


def test_missing_tensor_is_named(model_copy):
    _edit_tensors(model_copy, lambda t: t.pop("attention.query.weight"))
    with pytest.raises(ModelError, match="missing tensor 'attention.query.weight'"):
        load_model_dir(model_copy)


def test_extra_tensor_is_named(model_copy):
    _edit_tensors(model_copy, lambda t: t.update({"decoder.coverage.weight": np.zeros(3, np.float32)}))
    with pytest.raises(ModelError, match="decoder.coverage.weight"):
        load_model_dir(model_copy)


def test_wrong_shape_is_named(model_copy):
    _edit_tensors(model_copy, lambda t: t.update(
        {"decoder.readout.weight": np.zeros((20, 5), np.float32)}))
    with pytest.raises(ModelError, match=r"'decoder.readout.weight' has shape \[20, 5\]"):
        load_model_dir(model_copy)


def test_wrong_dtype_is_named(model_copy):
    _edit_tensors(model_copy, lambda t: t.update(
        {"attention.v": t["attention.v"].astype(np.float64)}))
    with pytest.raises(ModelError, match="'attention.v' has dtype float64"):
        load_model_dir(model_copy)


def test_vocabulary_size_mismatch(model_copy):
    with open(os.path.join(model_copy, "target_vocabulary.txt"), "a") as f:
        f.write("extra-token\n")
    with pytest.raises(ModelError, match="vocabulary size and weights disagree"):
        load_model_dir(model_copy)


def test_duplicate_vocabulary_token(model_copy):
    with open(os.path.join(model_copy, "source_vocabulary.txt"), "a") as f:
        f.write("<unk>\n")
    with pytest.raises(ModelError, match="appears twice"):
        load_model_dir(model_copy)


@pytest.mark.parametrize("keep", [0, 4, 40, -7])
def test_truncated_weights_file(model_copy, keep):
    weights = os.path.join(model_copy, "model.safetensors")
    data = open(weights, "rb").read()
    open(weights, "wb").write(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(ModelError, match="truncated|corrupt"):
        load_model_dir(model_copy)


def test_garbage_weights_file(model_copy):
    open(os.path.join(model_copy, "model.safetensors"), "wb").write(b"\xff" * 100)
    with pytest.raises(ModelError):
        load_model_dir(model_copy)


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "source_vocabulary.txt"])
def test_missing_file(model_copy, name):
    os.remove(os.path.join(model_copy, name))
    with pytest.raises(ModelError):
        rnnsearch.Translator(model_copy)


def test_corrupt_json(model_copy):
    open(os.path.join(model_copy, "config.json"), "w").write("{not json")
    with pytest.raises(ModelError, match="config.json"):
        load_model_dir(model_copy)


def test_missing_directory(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        rnnsearch.Translator(str(tmp_path / "nope"))


def test_write_refuses_invalid_model_and_writes_nothing(small_model_dir, tmp_path):
    files = load_model_dir(small_model_dir)
    tensors = dict(files.tensors)
    tensors.pop("decoder.output.weight")
    target = tmp_path / "out"
    with pytest.raises(ModelError, match="decoder.output.weight"):
        write_model_dir(str(target), files.config, tensors, files.source_vocab.tokens,
                        files.target_vocab.tokens)
    assert not target.exists()
