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
