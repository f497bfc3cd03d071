"""Hostile and broken model directories (issue 13, items 4, 5, 8, 9): files read only from
inside the folder and only when regular, sizes bounded before anything is allocated,
every failure a ModelError naming the file and field, the safetensors format's rules."""
import json
import os
import shutil
import struct
import threading
import time

import numpy as np
import pytest

import rnnsearch
from rnnsearch.model_dir import load_model_dir
from rnnsearch.safetensors_io import read_safetensors


@pytest.fixture
def model(small_model_dir, tmp_path):
    path = tmp_path / "model"
    shutil.copytree(small_model_dir, path)
    return path


def _config(model, change):
    config = json.loads((model / "config.json").read_text())
    change(config)
    (model / "config.json").write_text(json.dumps(config))


def _refused(model, match, seconds=10.0):
    """Loading gives a ModelError matching `match`, promptly (a thread: a hang must fail
    the test, not block the run)."""
    outcome = {}

    def load():
        try:
            rnnsearch.Translator(str(model))
            outcome["result"] = "loaded"
        except Exception as e:   # noqa: BLE001 - inspected below
            outcome["result"] = e
    thread = threading.Thread(target=load, daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"loading hangs (> {seconds} s)"
    error = outcome["result"]
    assert isinstance(error, rnnsearch.ModelError), repr(error)
    assert match in str(error), str(error)
    return time.monotonic() - start


# ---------------------------------------------------------------- 4: reads outside the folder

@pytest.mark.parametrize("name, match", [
    ("/etc/hostname", "no absolute path"),
    ("../model/target_vocabulary.txt", "no absolute path, '..'"),
    ("sub/../../x.txt", "'..'"),
    ("a\u0000b", "NUL"),
    ("\udc80.txt", "not valid Unicode"),
    ("", "expected a file name"),
    (7, "expected a file name"),
    (None, "expected a file name"),
])
def test_vocabulary_names_stay_inside_the_folder(model, name, match):
    _config(model, lambda c: c["source"].update(vocabulary=name))
    _refused(model, match)


def test_symlinks_leading_outside_are_refused(model, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("<pad>\n<unk>\nsecret\n")
    os.symlink(outside, model / "link.txt")
    _config(model, lambda c: c["source"].update(vocabulary="link.txt"))
    _refused(model, "leads outside")
    os.symlink(tmp_path, model / "up")     # through a directory symlink too
    _config(model, lambda c: c["source"].update(vocabulary="up/outside.txt"))
    _refused(model, "leads outside")


def test_symlink_inside_the_folder_is_fine(model):
    os.makedirs(model / "vocab")
    shutil.move(model / "source_vocabulary.txt", model / "vocab" / "src.txt")
    os.symlink("vocab/src.txt", model / "source_vocabulary.txt")
    rnnsearch.Translator(str(model)).translate_batch([["s1"]])


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "directory"])
def test_special_files_are_refused_without_hanging(model, kind):
    target = model / "special"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "dev_zero":
        os.symlink("/dev/zero", target)   # refused as outside; inside, as not regular
        _config(model, lambda c: c["source"].update(vocabulary="special"))
        _refused(model, "leads outside")
        os.unlink(target)
        os.mknod(target, 0o600 | 0o020000, os.makedev(1, 5)) if os.geteuid() == 0 else \
            pytest.skip("making a device node needs root")
    else:
        os.mkdir(target)
    _config(model, lambda c: c["source"].update(vocabulary="special"))
    _refused(model, "is not a regular file")


@pytest.mark.parametrize("replace", ["config.json", "model.safetensors"])
def test_config_and_weights_must_be_regular_files(model, replace):
    os.unlink(model / replace)
    os.mkfifo(model / replace)
    _refused(model, "not a regular file")


def test_huge_files_are_refused_before_reading(model):
    with open(model / "config.json", "ab") as f:
        f.truncate(17 * 2**20)          # sparse: 17 MB of nothing
    _refused(model, "at most")


# ---------------------------------------------------------------- 5: tiny files, huge sizes

@pytest.mark.parametrize("section, key, value", [
    ("encoder", "num_layers", 100_000_000),
    ("decoder", "num_layers", 17),
    ("encoder", "hidden_size", 2**31),
    ("decoder", "embedding_size", 10**30),
    ("source", "max_length", 10**9),
    ("source", "pad_to_length", 10**9),
    ("attention", "size", 65537),
])
def test_sizes_beyond_the_engine_limits_are_refused_at_once(model, section, key, value):
    _config(model, lambda c: c[section].update({key: value}))
    elapsed = _refused(model, f"{section}.{key}")
    assert elapsed < 5


def test_inspect_refuses_huge_layer_counts_at_once(model):
    from rnnsearch.inspect_model import describe
    _config(model, lambda c: c["encoder"].update(num_layers=100_000_000))
    start = time.monotonic()
    with pytest.raises(rnnsearch.ModelError, match="encoder.num_layers"):
        describe(str(model))
    assert time.monotonic() - start < 5


# ---------------------------------------------------------------- 8: the documented errors only

@pytest.mark.parametrize("change, match", [
    (lambda c: c.update(format_version=True), "format_version"),
    (lambda c: c.update(special_tokens=None), "special_tokens"),
    (lambda c: c["special_tokens"].update(unk=None), "special_tokens.unk"),
    (lambda c: c.update(encoder=[]), "encoder"),
    (lambda c: c["encoder"].update(cell=None), "encoder.cell"),
    (lambda c: c["encoder"].update(cell=["gru"]), "encoder.cell"),
    (lambda c: c["decoder"].update(readout_inputs=[{}, []]), "readout_inputs"),
    (lambda c: c["target"].update(word_separator="\udc80"), "not valid Unicode"),
    (lambda c: c["decoder"].update(hidden_size="16"), "decoder.hidden_size"),
    (lambda c: c["decoder"].update(hidden_size=16.0), "decoder.hidden_size"),
    (lambda c: c["encoder"].update({"x" * 10000: 1}), "unknown key"),
    (lambda c: c["source"].update(vocabulary=[[[[[]]]]]), "source.vocabulary"),
])
def test_wrong_types_are_model_errors(model, change, match):
    _config(model, change)
    _refused(model, match)


@pytest.mark.parametrize("text, match", [
    ("[" * 100_000 + "]" * 100_000, "nested"),
    ('{"a":' * 500 + "1" + "}" * 500, "nested"),
    ('{"format": "rnnsearch-model", "format_version": 1' + ', "x": 1' * 3 + "}", "unknown"),
    ("\xff\xfe{}", "cannot parse"),
    ('{"format_version": ' + "9" * 5000 + "}", "cannot parse"),
    ("", "cannot parse"),
])
def test_malformed_json_is_a_model_error(model, text, match):
    (model / "config.json").write_bytes(text.encode("utf-8", "surrogateescape")
                                        if not text.startswith("\xff") else b"\xff\xfe{}")
    _refused(model, match)


def test_model_path_of_the_wrong_type(model):
    with pytest.raises(TypeError, match="model_path"):
        rnnsearch.Translator(7)
    with pytest.raises(rnnsearch.ModelError, match="not found"):
        rnnsearch.Translator(str(model) + "\0")


# ---------------------------------------------------------------- 9: the safetensors format

def _rewrite_header(path, change):
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    body = data[8 + length:]
    body = change(header, body) or body
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + body)


def _entries(header):
    return sorted((k for k in header if k != "__metadata__"),
                  key=lambda k: header[k]["data_offsets"][0])


def test_overlapping_offsets_are_refused(model):
    def overlap(header, body):   # the second tensor starts inside the first
        first, second = _entries(header)[:2]
        shift = header[first]["data_offsets"][1] - header[second]["data_offsets"][0] - 4
        header[second]["data_offsets"] = [x + shift for x in header[second]["data_offsets"]]
    _rewrite_header(model / "model.safetensors", overlap)
    _refused(model, "overlaps the tensor before it")


def test_shifted_offsets_leaving_a_gap_are_refused(model):
    def shift(header, body):     # every tensor 4 bytes later: other bytes, silently
        for name in _entries(header):
            header[name]["data_offsets"] = [x + 4 for x in header[name]["data_offsets"]]
        return b"\0" * 4 + body
    _rewrite_header(model / "model.safetensors", shift)
    _refused(model, "unused")


def test_trailing_bytes_are_refused(model):
    with open(model / "model.safetensors", "ab") as f:
        f.write(b"\0" * 16)
    _refused(model, "trailing bytes")


@pytest.mark.parametrize("entry, match", [
    ({"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}, "non-negative"),
    ({"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 16]}, "do not match"),
    ({"dtype": "F32", "shape": [4], "data_offsets": [0.0, 16.0]}, "data_offsets"),
    ({"dtype": "F32", "shape": [4], "data_offsets": [True, 16]}, "data_offsets"),
    ({"dtype": "F32", "shape": [4], "data_offsets": [0, 2**70]}, "do not match"),
    ({"dtype": "F32", "shape": [2**30], "data_offsets": [0, 2**32]}, "truncated"),
    ({"dtype": "X9", "shape": [4], "data_offsets": [0, 16]}, "dtype"),
    ({"dtype": "F32", "shape": [4]}, "exactly dtype"),
    ({"dtype": "F32", "shape": [[[[4]]]], "data_offsets": [0, 16]}, "non-negative"),
    ([1, 2, 3], "exactly dtype"),
])
def test_corrupt_header_entries_are_model_errors(model, entry, match):
    def corrupt(header, body):
        header[_entries(header)[0]] = entry
    _rewrite_header(model / "model.safetensors", corrupt)
    _refused(model, match)


def test_well_formed_files_still_load(small_model_dir):
    tensors, metadata = read_safetensors(os.path.join(small_model_dir, "model.safetensors"))
    assert metadata["format"] == "rnnsearch-model"
    assert all(isinstance(v, np.ndarray) for v in tensors.values())
    load_model_dir(small_model_dir)
