"""Reading a stranger's file with a native library, tried first in a child process under a
time and a memory limit.

h5py (libhdf5) and torch.load run native code over the file's bytes that Python cannot
interrupt: a corrupt HDF5 global heap can make libhdf5 loop forever, a corrupt storage
size can make torch.load allocate gigabytes before it fails. So a converter's reader runs
once in a forked child first, with an address-space limit and a deadline. If the child
finishes (with a result or with any exception but a memory error), the reader then runs
here for real: same code, same bytes, so it finishes here too, and its result or its
exception is the genuine one. If the child runs out of time or memory, or dies of a
signal, conversion stops with a ModelError saying so and the file is never read here.

Environment (docs/security.md, "Converting untrusted files"):
    RNNSEARCH_READ_TIMEOUT     seconds the child may take (default: 60 + 1 s per 20 MB)
    RNNSEARCH_READ_MEMORY_MB   memory the child may add (default: 2 GiB + 3x the file)
    RNNSEARCH_READ_CHECK=0     skip the child (trusted files; also where fork is missing)
"""
from __future__ import annotations

import functools
import json
import os
import select
import signal
import threading
import time
import warnings

from ...errors import ModelError

_MB = 2**20
_state = threading.local()   # .depth: readers running inside a checked reader


def checked_in_child(what: str):
    """Decorator for a reader whose first argument is the file's path: the reader runs in
    a child under limits before it runs here (a reader it calls is not checked again)."""
    def wrap(reader):
        @functools.wraps(reader)
        def checked(path, *args, **kwargs):
            if getattr(_state, "depth", 0) == 0 and _enabled():
                _try_in_child(lambda: reader(path, *args, **kwargs), path, what)
            _state.depth = getattr(_state, "depth", 0) + 1
            try:
                return reader(path, *args, **kwargs)
            finally:
                _state.depth -= 1
        return checked
    return wrap


def _enabled() -> bool:
    return hasattr(os, "fork") and os.environ.get("RNNSEARCH_READ_CHECK", "1") != "0"


def _file_size(path) -> int:
    try:
        return os.stat(path).st_size
    except (OSError, TypeError, ValueError):
        return 0   # the reader itself says what is wrong with the path


def _limit(name: str, default: float) -> float:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a positive number, got {text!r}")
    return value


def limits_for(path) -> tuple[float, int]:
    """(seconds, bytes) the child may take to read `path`."""
    size = _file_size(path)
    seconds = _limit("RNNSEARCH_READ_TIMEOUT", 60 + size / (20 * _MB))
    memory_mb = _limit("RNNSEARCH_READ_MEMORY_MB", 2048 + 3 * size / _MB)
    return seconds, int(memory_mb * _MB)


def _try_in_child(run, path, what: str) -> None:
    seconds, memory = limits_for(path)
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():   # Python 3.12+ warns about forking with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:   # the child: never returns
        os.close(read_fd)
        _child(run, write_fd, memory)
    os.close(write_fd)
    try:
        report = _wait(pid, read_fd, seconds)
    finally:
        os.close(read_fd)
    _judge(report, path, what, seconds, memory)


def _child(run, write_fd: int, memory: int) -> None:
    status = {"outcome": "ok"}
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)   # the parent prints the reader's notes
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        _state.depth = 1
        _limit_address_space(memory)
        run()
    except BaseException as e:   # noqa: BLE001 - everything is reported to the parent
        status = {"outcome": "raised", "type": type(e).__name__, "message": str(e)[:2000],
                  "memory": _out_of_memory(e)}
    try:
        os.write(write_fd, json.dumps(status).encode())
    finally:
        os._exit(0)


def _out_of_memory(error: BaseException) -> bool:
    """Whether the limit stopped the reader: a MemoryError, or an allocator's error
    (torch's says "can't allocate memory"), also when a reader wrapped it in its own."""
    seen = 0
    while error is not None and seen < 32:
        if isinstance(error, MemoryError) or \
                (not isinstance(error, ModelError) and "alloc" in str(error).lower()):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def _limit_address_space(extra: int) -> None:
    """The child may map `extra` bytes beyond what it has now (the parent's libraries)."""
    try:
        import resource
    except ImportError:   # pragma: no cover - not POSIX
        return
    try:
        with open("/proc/self/statm") as f:
            current = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):   # not Linux: no RLIMIT_AS to speak of
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = current + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _wait(pid: int, read_fd: int, seconds: float) -> dict:
    """The child's report, or {"outcome": "timeout"} / {"outcome": "signal", ...}."""
    chunks = None
    try:
        chunks = _read_report(read_fd, time.monotonic() + seconds)
    finally:
        if chunks is None:   # out of time, or Ctrl-C while waiting: the child goes too
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, status = os.waitpid(pid, 0)
    if chunks is None:
        return {"outcome": "timeout"}
    if os.WIFSIGNALED(status):
        return {"outcome": "signal", "signal": os.WTERMSIG(status)}
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return {"outcome": "signal", "signal": 0}


def _read_report(read_fd: int, deadline: float) -> list[bytes] | None:
    """What the child wrote before closing its end, or None at the deadline."""
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([read_fd], [], [], min(left, 1.0))
        if ready:
            chunk = os.read(read_fd, 65536)
            if not chunk:
                return chunks
            chunks.append(chunk)


def _judge(report: dict, path, what: str, seconds: float, memory: int) -> None:
    outcome = report.get("outcome")
    if outcome == "timeout":
        raise ModelError(f"{path}: reading the {what} did not finish within {seconds:.0f} s "
                         "(a corrupt file can make the native reader loop forever; "
                         "RNNSEARCH_READ_TIMEOUT gives it longer)")
    if outcome == "signal":
        name = signal.Signals(report["signal"]).name if report["signal"] else "unknown"
        raise ModelError(f"{path}: the native reader of the {what} died on it (signal "
                         f"{name}; a crash, or past the {memory // _MB} MiB it may use)")
    if outcome == "raised" and report.get("memory"):
        raise ModelError(f"{path}: reading the {what} needs more than {memory // _MB} MiB of "
                         f"memory ({report['type']}: {report['message'][:300]}); a corrupt "
                         "file can declare sizes far beyond its bytes "
                         "(RNNSEARCH_READ_MEMORY_MB allows more)")
