"""Reading a tokenizer's model file: ModelError naming it when it is missing, unreadable or
implausibly large."""
from __future__ import annotations

from ..errors import ModelError

MAX_MODEL_BYTES = 256 * 1024 * 1024


def read_model_file(path: str, what: str) -> bytes:
    """The bytes of `what` (e.g. "SentencePiece model") at `path`."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_MODEL_BYTES + 1)
    except FileNotFoundError as e:
        raise ModelError(f"{what} file not found: {path}") from e
    except OSError as e:
        raise ModelError(f"cannot read {what} {path}: {e}") from e
    if len(data) > MAX_MODEL_BYTES:
        raise ModelError(f"{path}: {what} larger than {MAX_MODEL_BYTES} bytes")
    return data
