"""Read and write safetensors files with NumPy.

The format is tiny (8-byte little-endian header length, a JSON header, raw bytes), so we
read it ourselves: the `safetensors` package's NumPy loader copies every tensor into
memory, while the engine wants memory-mapped, zero-copy views of the file.
"""
from __future__ import annotations

import json
import os
import secrets
import struct

import numpy as np

from .errors import ModelError
from .limits import MAX_WEIGHTS_HEADER_BYTES
from .safe_files import open_regular, parse_json

_DTYPES = {
    "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "F64": np.dtype("<f8"),
    "I8": np.dtype("i1"), "U8": np.dtype("u1"), "I32": np.dtype("<i4"), "I64": np.dtype("<i8"),
}
_NAMES = {dtype: name for name, dtype in _DTYPES.items()}


def read_safetensors(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Return ({name: read-only memory-mapped array}, metadata); ModelError on any fault.

    The format's rules are enforced (https://github.com/huggingface/safetensors): a JSON
    object header of tensors with a known dtype, a shape of non-negative integers and
    data_offsets [begin, end] that match it; the tensors' bytes tile the data section
    exactly (no overlap, no gap, nothing after the last one), so every byte has one meaning.
    """
    with open_regular(path, "weights file") as f:
        size = os.fstat(f.fileno()).st_size
        try:
            raw_len = f.read(8)
            if len(raw_len) < 8:
                raise ModelError(f"{path}: truncated weights file (no header)")
            (header_len,) = struct.unpack("<Q", raw_len)
            if header_len > min(size - 8, MAX_WEIGHTS_HEADER_BYTES):
                raise ModelError(f"{path}: corrupt weights file (header length {header_len} "
                                 f"but file has {size} bytes)")
            raw_header = f.read(header_len)
        except OSError as e:
            raise ModelError(f"cannot read weights file {path}: {e}") from e
        header = parse_json(raw_header, f"{path}: weights header")
        if not isinstance(header, dict):
            raise ModelError(f"{path}: corrupt weights header (not a JSON object)")
        metadata = header.pop("__metadata__", None) or {}
        if not isinstance(metadata, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ModelError(f"{path}: __metadata__ must map strings to strings")
        data_start = 8 + header_len
        data_len = size - data_start
        entries = sorted((_entry(path, name, info, data_len) for name, info in header.items()),
                         key=lambda e: (e[3], e[4]))
        end_of_previous = 0
        for name, _, _, begin, end in entries:
            if begin != end_of_previous:
                what = "overlaps the tensor before it" if begin < end_of_previous else \
                    f"leaves bytes {end_of_previous}..{begin} of the data section unused"
                raise ModelError(f"{path}: tensor '{name}' (data_offsets {begin}..{end}) {what}")
            end_of_previous = end
        if end_of_previous != data_len:
            raise ModelError(f"{path}: the tensors end at byte {end_of_previous} of the data "
                             f"section but the file holds {data_len} (trailing bytes)")
        try:
            mapped = np.memmap(f, dtype=np.uint8, mode="r", offset=data_start,
                               shape=(data_len,)) if data_len > 0 else np.zeros(0, np.uint8)
        except (OSError, ValueError) as e:   # e.g. truncated since it was opened
            raise ModelError(f"cannot map weights file {path}: {e}") from e
    tensors = {name: mapped[begin:end].view(dtype).reshape(shape)
               for name, dtype, shape, begin, end in entries}
    return tensors, metadata


def _entry(path: str, name: str, info, data_len: int):
    """(name, dtype, shape, begin, end) of one header entry, checked."""
    def bad(why: str) -> ModelError:
        return ModelError(f"{path}: tensor '{name}' has a corrupt header entry ({why}): "
                          f"{str(info)[:200]}")

    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise bad("expected exactly dtype, shape and data_offsets")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise bad(f"dtype must be one of {sorted(_DTYPES)}")
    if not isinstance(shape, list) or len(shape) > 8 or not all(
            type(d) is int and d >= 0 for d in shape):
        raise bad("shape must be a list of at most 8 non-negative integers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(
            type(x) is int and 0 <= x for x in offsets):
        raise bad("data_offsets must be two non-negative integers")
    begin, end = offsets
    count = 1
    for d in shape:
        count *= d   # Python integers: no overflow
    if begin > end or end - begin != count * _DTYPES[dtype].itemsize:
        raise ModelError(f"{path}: tensor '{name}' has offsets {begin}..{end} that do not "
                         f"match its shape {shape} and dtype {dtype}")
    if end > data_len:
        raise ModelError(f"{path}: truncated weights file: tensor '{name}' ends at byte "
                         f"{end} of the data section but the file holds {data_len}")
    return name, _DTYPES[dtype], tuple(shape), begin, end


def write_safetensors(path: str, tensors: dict[str, np.ndarray],
                      metadata: dict[str, str] | None = None) -> None:
    """Write atomically: a temporary file in the same directory renamed into place."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    arrays = []
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        little = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        array = array.astype(little, copy=False)
        if array.dtype not in _NAMES:
            raise ValueError(f"tensor '{name}': unsupported dtype {array.dtype}")
        header[name] = {"dtype": _NAMES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
        arrays.append(array)
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)  # keep the data section 8-byte aligned
    with atomic_write(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for array in arrays:
            f.write(array.tobytes())


# Temporary files of writes not yet finished (renamed into place or removed). A signal
# raised between a file's creation and the start of its `with` block escapes
# atomic_write.__exit__; the command line removes what is left here on its way out
# (discard_unfinished).
_UNFINISHED: set[str] = set()


def _new_sibling(directory: str, name: str) -> tuple[int, str]:
    """Create a new file for writing next to where `name` goes, with the permissions a new
    file gets (0666 less the umask, as open() gives): tempfile.mkstemp would make it 0600,
    and the rename would carry that to the finished file."""
    while True:
        path = os.path.join(directory, f".tmp-{secrets.token_hex(6)}-{name}")
        _UNFINISHED.add(path)   # before it exists: no moment where it exists unrecorded
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                         getattr(os, "O_BINARY", 0), 0o666)
        except OSError as e:   # not created (by us)
            _UNFINISHED.discard(path)
            if isinstance(e, FileExistsError):
                continue
            raise
        return fd, path


def discard_unfinished() -> None:
    """Remove the temporary files of writes that never reached their `with` block's end
    (an interrupting signal), so that a stopped command leaves nothing behind."""
    for path in list(_UNFINISHED):
        try:
            os.unlink(path)
        except OSError:
            pass
        _UNFINISHED.discard(path)


class atomic_write:
    """Context manager: write to a temporary sibling, rename over `path` only on success."""

    def __init__(self, path: str, mode: str = "w", encoding: str | None = None):
        self.path, self.mode = path, mode
        self.encoding = encoding if "b" not in mode else None

    def __enter__(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, self.tmp = _new_sibling(directory, os.path.basename(self.path))
        try:
            self.file = os.fdopen(fd, self.mode, encoding=self.encoding,
                                  **({} if "b" in self.mode else {"newline": "\n"}))
        except BaseException:
            os.close(fd)
            raise   # the file stays in _UNFINISHED for discard_unfinished
        return self.file

    def __exit__(self, exc_type, exc, tb):
        self.file.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)
        _UNFINISHED.discard(self.tmp)
        return False
