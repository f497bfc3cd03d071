"""NumPy .npz archives from strangers (Marian's model.npz, `translate --features` files):
whatever zipfile cannot read is a documented error naming the file, never zipfile's own
NotImplementedError (found by fuzzing marian_npz: a central directory claiming zip
version 15.0)."""
import numpy as np
import pytest

import rnnsearch


def _npz_claiming_zip_version_15(path) -> str:
    np.savez(path, a=np.zeros((2, 3), np.float32))
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 6:central + 8] = (150).to_bytes(2, "little")   # version needed: 15.0
    path.write_bytes(bytes(data))
    return str(path)


def _npz_with_unknown_compression(path) -> str:
    np.savez(path, a=np.zeros((2, 3), np.float32))
    data = bytearray(path.read_bytes())
    for header in (b"PK\x03\x04", b"PK\x01\x02"):       # local and central headers
        at = data.index(header)
        offset = 8 if header == b"PK\x03\x04" else 10
        data[at + offset:at + offset + 2] = (99).to_bytes(2, "little")   # method 99
    path.write_bytes(bytes(data))
    return str(path)


@pytest.mark.parametrize("make", [_npz_claiming_zip_version_15, _npz_with_unknown_compression])
def test_marian_npz_zipfile_cannot_read_is_a_model_error(tmp_path, make):
    from rnnsearch.convert.marian.files import read_npz
    path = make(tmp_path / "model.npz")
    with pytest.raises(rnnsearch.ModelError, match="model.npz"):
        read_npz(path)


@pytest.mark.parametrize("make", [_npz_claiming_zip_version_15, _npz_with_unknown_compression])
def test_feature_file_zipfile_cannot_read_is_a_value_error(tmp_path, make):
    from rnnsearch.cli_features import read_feature_files
    path = make(tmp_path / "frames.npz")
    with pytest.raises(ValueError, match="frames.npz"):
        read_feature_files([path])


def test_npy_declaring_more_than_it_holds_is_refused_before_allocating(tmp_path):
    """A header claiming 10^13 rows in a file of a few bytes: refused by comparing the
    declared size with the file's, not by trying to allocate 120 TB."""
    from rnnsearch.npy_files import read_npy
    path = tmp_path / "frames.npy"
    np.save(path, np.zeros((2, 3), np.float32))
    header = path.read_bytes()
    path.write_bytes(header.replace(b"(2, 3), }", b"(9999999999999, 3), }"))
    with open(path, "rb") as f, pytest.raises(rnnsearch.ModelError, match="declares shape"):
        read_npy(f, str(path))


def test_npz_header_the_tokenizer_chokes_on_is_a_model_error(tmp_path):
    """Found by fuzzing marian_npz: a version-1.0 header whose dict is cut open made
    NumPy's header filter raise tokenize.TokenError."""
    import zipfile
    from rnnsearch.npy_files import read_npz
    np.save(tmp_path / "a.npy", np.zeros(3, np.float32))
    data = (tmp_path / "a.npy").read_bytes()
    length = int.from_bytes(data[8:10], "little")
    broken = data[:10] + b"{'descr': ('<f4', " + b" " * (length - 19) + b"\n" + data[10 + length:]
    with zipfile.ZipFile(tmp_path / "model.npz", "w") as z:
        z.writestr("a.npy", broken)
    with pytest.raises(rnnsearch.ModelError, match="model.npz"):
        read_npz(str(tmp_path / "model.npz"), str(tmp_path / "model.npz"))


def test_arrays_read_back_exactly(tmp_path):
    from rnnsearch.npy_files import read_npy, read_npz
    arrays = {"a": np.arange(12, dtype=np.float32).reshape(3, 4),
              "b": np.asfortranarray(np.arange(6, dtype=np.int8).reshape(2, 3)),
              "empty": np.zeros((0, 5), np.float64), "special:model.yml": np.frombuffer(
                  b"type: s2s\n", dtype=np.int8)}
    np.savez(tmp_path / "m.npz", **arrays)
    got = read_npz(str(tmp_path / "m.npz"), "m.npz")
    assert list(got) == list(arrays)
    for name, array in arrays.items():
        assert got[name].dtype == array.dtype and np.array_equal(got[name], array)
    np.save(tmp_path / "a.npy", arrays["b"])
    with open(tmp_path / "a.npy", "rb") as f:
        assert np.array_equal(read_npy(f, "a.npy"), arrays["b"])
