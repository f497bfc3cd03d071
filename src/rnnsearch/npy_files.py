"""NumPy .npy and .npz files from strangers (Marian's model.npz, `translate --features`),
read without trusting them: no pickles, every array's declared size checked against the
bytes that hold it before anything is allocated, an archive's unpacked size bounded by the
machine's memory, and whatever NumPy's header parser or zipfile raise on a corrupt file
(SyntaxError, tokenize.TokenError, zlib.error, NotImplementedError for an unknown zip
version or compression, ...) turned into one ModelError naming the file."""
from __future__ import annotations

import math
import os
import tokenize
import zipfile

import numpy as np

from .errors import ModelError
from .limits import physical_memory
from .safe_files import ZIP_ERRORS

# what a corrupt header or archive makes NumPy's format module and zipfile raise
_CORRUPT = ZIP_ERRORS + (OSError, ValueError, SyntaxError, tokenize.TokenError, KeyError,
                        TypeError, OverflowError, RecursionError)


def is_npz(f) -> bool:
    """Whether the open binary file f is a zip archive (else: a .npy file); f is rewound."""
    start = f.read(4)
    f.seek(0)
    return start == b"PK\x03\x04" or start == b"PK\x05\x06"


def _header(f, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ModelError(f"{where}: unknown .npy format version {version}")
    if dtype.hasobject:
        raise ModelError(f"{where}: holds Python objects (pickles are never loaded)")
    return shape, fortran, dtype


def _array(f, available: int, where: str) -> np.ndarray:
    """The array of the .npy stream f, whose data may be at most `available` bytes."""
    shape, fortran, dtype = _header(f, where)
    count = math.prod(shape)
    need = count * dtype.itemsize
    if need > available:
        raise ModelError(f"{where}: declares shape {list(shape)} of {dtype} ({need} bytes) "
                         f"but holds at most {available} bytes")
    array = np.empty(count, dtype)
    if need and f.readinto(memoryview(array).cast("B")) != need:
        raise ModelError(f"{where}: the array data is cut short")
    return array.reshape(shape, order="F" if fortran else "C")


def read_npy(f, where: str) -> np.ndarray:
    """The array of an open .npy file (a regular file: its size bounds the data)."""
    size = os.fstat(f.fileno()).st_size
    try:
        return _array(f, size, where)
    except ModelError:
        raise
    except _CORRUPT as e:
        raise ModelError(f"{where}: not a readable .npy file ({type(e).__name__}: {e})") from e


def read_npz(f, where: str) -> dict[str, np.ndarray]:
    """Every array of an .npz archive (a path or an open binary file), by name (without
    '.npy'), in the order they were stored."""
    try:
        with zipfile.ZipFile(f) as archive:
            members = archive.infolist()
            unpacked = sum(info.file_size for info in members)
            if unpacked > physical_memory():   # a zip bomb
                raise ModelError(f"{where}: unpacks to {unpacked} bytes, more than this "
                                 "machine's memory")
            arrays = {}
            for info in members:
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                with archive.open(info) as member:
                    arrays[name] = _array(member, info.file_size,
                                          f"{where}:{name}")
            return arrays
    except ModelError:
        raise
    except _CORRUPT as e:
        raise ModelError(f"{where}: not a readable .npz file ({type(e).__name__}: {e})") from e
