"""Reading the files of a model directory or of a converter's input as untrusted input.

Every loader and converter reads through here, so that a file named by another file (a
vocabulary named in config.json, a JoeyNMT voc_file) is only read from inside the folder
it belongs to, only regular files are read (a FIFO would block forever, /dev/zero never
ends), sizes are bounded before reading, and nested JSON/YAML cannot exhaust the stack.
Every failure is a ModelError naming the file. docs/security.md describes the policy.
"""
from __future__ import annotations

import json
import os
import stat
import zipfile
import zlib

from .errors import ModelError
from .limits import MAX_CONFIG_BYTES, MAX_CONFIG_ITEMS, MAX_JSON_DEPTH

# what unpacking a corrupt zip member raises: a bad archive or CRC, a corrupt deflate
# stream, an unknown zip version or compression, an encrypted member, a cut-short file
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError)


def check_relative_name(name, what: str) -> str:
    """A file name taken from a config: a relative path that stays inside its folder
    (no absolute path, no '..', no NUL, encodable as a file name)."""
    if not isinstance(name, str) or not name:
        raise ModelError(f"{what} = {name!r}; expected a file name")
    if "\0" in name or os.path.isabs(name) or name.startswith(("/", "\\")) or \
            any(part == ".." for part in name.replace("\\", "/").split("/")):
        raise ModelError(f"{what} = {name!r}; expected a file name inside the folder (no "
                         "absolute path, '..' or NUL)")
    try:
        os.fsencode(name)
    except UnicodeError as e:
        raise ModelError(f"{what} = {name!r}; not a valid file name") from e
    return name


def resolve_inside(folder: str, name, what: str) -> str:
    """The path of `name` inside `folder`; ModelError if it (or a symlink on the way)
    leads outside the folder."""
    check_relative_name(name, what)
    root = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(root, name))
    if os.path.commonpath([root, path]) != root:
        raise ModelError(f"{what} = {name!r} leads outside {folder} (through a symlink); "
                         "files are only read from inside the folder")
    return path


def is_inside(folder: str, path: str) -> bool:
    root = os.path.realpath(folder)
    return os.path.commonpath([root, os.path.realpath(path)]) == root


def open_regular(path: str, what: str, max_bytes: int | None = None):
    """Open `path` for binary reading if it is a regular file (not a FIFO, device or
    directory) of at most max_bytes; the check is made on the opened file, so it cannot be
    swapped in between. Returns a file object."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer before we can refuse it
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) |
                     getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as e:
        raise ModelError(f"{what} not found: {path}") from e
    except (OSError, ValueError) as e:   # ValueError: NUL in the path
        raise ModelError(f"cannot open {what} {path}: {e}") from e
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ModelError(f"{what} {path} is not a regular file")
        if max_bytes is not None and info.st_size > max_bytes:
            raise ModelError(f"{what} {path} is {info.st_size} bytes; at most {max_bytes} "
                             "are read")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def require_regular_file(path: str, what: str) -> str:
    """ModelError unless `path` is an existing regular file (not a FIFO, device or
    directory), before handing it to a reader of its own (torch, onnx, h5py)."""
    open_regular(path, what).close()
    return path


def read_bytes(path: str, what: str, max_bytes: int) -> bytes:
    with open_regular(path, what, max_bytes) as f:
        try:
            data = f.read(max_bytes + 1)
        except OSError as e:
            raise ModelError(f"cannot read {what} {path}: {e}") from e
    if len(data) > max_bytes:   # grew since it was opened
        raise ModelError(f"{what} {path} is larger than {max_bytes} bytes")
    return data


def read_text(path: str, what: str, max_bytes: int) -> str:
    data = read_bytes(path, what, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelError(f"{what} {path} is not UTF-8 text: {e}") from e


def check_depth(value, what: str, max_depth: int = MAX_JSON_DEPTH,
                max_items: int = MAX_CONFIG_ITEMS) -> None:
    """ModelError if lists/dicts nest deeper than max_depth, or (YAML aliases can share
    a list many times over) more than max_items values are reachable. No recursion."""
    stack = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > max_items:
            raise ModelError(f"{what}: more than {max_items} values")
        if isinstance(item, (dict, list, tuple)):
            if depth > max_depth:
                raise ModelError(f"{what}: nested more than {max_depth} levels deep")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def parse_json(text, what: str, max_depth: int = MAX_JSON_DEPTH):
    """json.loads with every failure (syntax, encoding, nesting, huge numbers) as
    ModelError."""
    try:
        value = json.loads(text)
    except RecursionError as e:
        raise ModelError(f"{what}: nested too deeply") from e
    except (ValueError, TypeError) as e:   # JSONDecodeError, UnicodeDecodeError, int digits
        raise ModelError(f"{what}: cannot parse: {e}") from e
    check_depth(value, what, max_depth)
    return value


def load_json(path: str, what: str, max_bytes: int = MAX_CONFIG_BYTES,
              max_depth: int = MAX_JSON_DEPTH):
    return parse_json(read_bytes(path, what, max_bytes), f"{what} {path}", max_depth)


def load_yaml(path: str, what: str, max_bytes: int = MAX_CONFIG_BYTES,
              max_depth: int = MAX_JSON_DEPTH):
    """yaml.safe_load of a bounded regular file; every failure a ModelError."""
    try:
        import yaml
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModelError(f"reading {what} needs PyYAML (pip install pyyaml)") from e
    text = read_text(path, what, max_bytes)
    try:
        value = yaml.safe_load(text)
    except RecursionError as e:
        raise ModelError(f"{what} {path}: nested too deeply") from e
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as e:
        raise ModelError(f"{what} {path}: cannot parse: {e}") from e
    check_depth(value, f"{what} {path}", max_depth)
    return value
