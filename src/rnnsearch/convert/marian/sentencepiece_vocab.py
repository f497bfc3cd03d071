"""Marian's SentencePiece vocabularies (.spm): the pieces by id, read with the sentencepiece
package (pip install sentencepiece)."""
from __future__ import annotations

from ...errors import ModelError


def pieces(path: str) -> list[str]:
    try:
        import sentencepiece
    except ImportError as e:
        raise ModelError(f"{path}: reading a SentencePiece vocabulary needs the sentencepiece "
                         "package (pip install sentencepiece)") from e
    try:
        with open(path, "rb") as f:
            processor = sentencepiece.SentencePieceProcessor(model_proto=f.read())
    except (OSError, RuntimeError, ValueError) as e:
        raise ModelError(f"{path}: not a SentencePiece model ({e})") from e
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
