"""Input lines for `rnnsearch translate`: from a file (`-i`, or stdin redirected from a
file), read whole and cut into --batch-size batches; from a pipe or a terminal, streamed:
each batch is the lines that have arrived (at most --batch-size), translated before the
command waits for more, so a line in gives a line out.

Both read bytes and decode every line the same way (--encoding, UTF-8 by default; a UTF-8
byte-order mark at the start is dropped; a line ending in CR LF loses both), so stdin and
`-i` give the same text for the same file, and a line that does not decode is an error
that names it.
"""
from __future__ import annotations

import codecs
import os
import stat
import sys
from collections.abc import Iterator

_READ_SIZE = 1 << 16


class InputError(ValueError):
    """The input cannot be read as text in the chosen encoding."""


class InputLines:
    """The lines of `path` (None or "-": stdin) in batches of at most batch_size."""

    def __init__(self, path: str | None, encoding: str = "utf-8"):
        try:
            codecs.lookup(encoding)
        except LookupError as e:
            raise InputError(f"--encoding: unknown encoding {encoding!r}") from e
        self.encoding = encoding
        self.from_stdin = path in (None, "-")
        self.name = "<stdin>" if self.from_stdin else path
        self._lines_read = 0
        if self.from_stdin:
            try:
                self._fd = sys.stdin.fileno()
            except (AttributeError, OSError, ValueError):   # no stdin, or a text object
                self.streaming, self.encoding = False, "utf-8"
                self._data = sys.stdin.read().encode("utf-8") if sys.stdin else b""
                return
            self.streaming = not stat.S_ISREG(os.fstat(self._fd).st_mode)
            self._data = None if self.streaming else _read_all(self._fd)
        else:
            self.streaming = False
            with open(path, "rb") as f:
                self._data = f.read()

    def count(self) -> int | None:
        """How many lines a file holds (None for a stream, which has no end in sight)."""
        if self._data is None:
            return None
        return self._data.count(b"\n") + (1 if self._data and not self._data.endswith(b"\n") else 0)

    def batches(self, batch_size: int) -> Iterator[list[str]]:
        raw = self._stream_batches(batch_size) if self.streaming else \
            _chunks(self._data.split(b"\n")[:self.count()], batch_size)
        for lines in raw:
            yield [self._decode(line) for line in lines]

    def _decode(self, line: bytes) -> str:
        self._lines_read += 1
        if self._lines_read == 1 and self.encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
            line = line.removeprefix(codecs.BOM_UTF8)
        if line.endswith(b"\r"):
            line = line[:-1]
        try:
            return line.decode(self.encoding)
        except UnicodeDecodeError as e:
            raise InputError(
                f"{self.name}, line {self._lines_read}: not valid {self.encoding} (byte "
                f"0x{line[e.start]:02x} at byte {e.start + 1} of the line); pass the input's "
                f"encoding with --encoding (e.g. --encoding latin-1), or convert it to UTF-8"
            ) from None

    def _stream_batches(self, batch_size: int) -> Iterator[list[bytes]]:
        """One read returns whatever has arrived (waiting only when nothing has): the
        complete lines in hand are translated at once, in batches of batch_size."""
        pending = b""
        while True:
            chunk = os.read(self._fd, _READ_SIZE)
            pending += chunk
            *complete, pending = pending.split(b"\n")
            if not chunk and pending:   # the last line has no newline
                complete, pending = complete + [pending], b""
            yield from _chunks(complete, batch_size)
            if not chunk:
                return


def _read_all(fd: int) -> bytes:
    parts = []
    while True:
        chunk = os.read(fd, _READ_SIZE)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
