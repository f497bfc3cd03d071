"""Reading a tokenizer's model file: ModelError naming it when it is missing, unreadable or
implausibly large."""
from __future__ import annotations

from ..safe_files import read_bytes

MAX_MODEL_BYTES = 256 * 1024 * 1024


def read_model_file(path: str, what: str) -> bytes:
    """The bytes of `what` (e.g. "SentencePiece model") at `path`: a regular file
    (rnnsearch.safe_files)."""
    return read_bytes(path, f"{what} file", MAX_MODEL_BYTES)
