"""SentencePiece (Kudo and Richardson 2018) through the `sentencepiece` package, imported
only when a model directory names this tokenizer (pip install "rnnsearch[sentencepiece]").

encode: the pieces of `SentencePieceProcessor.encode(text, out_type=str)` (text the model
cannot encode comes out as its unknown piece, which the translator maps to the model's UNK);
decode: `decode_pieces`, which is what OpenNMT-py's `sentencepiece` transform does on the
way out.
"""
from __future__ import annotations

import re
import warnings

from ..errors import ModelError
from .files import read_model_file

# lone surrogates (e.g. from undecodable bytes read with surrogateescape) are not text the
# C++ library accepts; they become U+FFFD, which a model's vocabulary does not hold (-> UNK)
_SURROGATES = re.compile("[\ud800-\udfff]")


def _module():
    try:
        import sentencepiece
    except ImportError as e:
        raise ModelError("this model's tokenizer is SentencePiece, which needs the "
                         "sentencepiece package: pip install \"rnnsearch[sentencepiece]\"") \
            from e
    return sentencepiece


class SentencePieceTokenizer:
    kind = "sentencepiece"

    def __init__(self, path: str, lowercase: bool = False):
        self.path = path
        self.lowercase = lowercase
        proto = read_model_file(path, "SentencePiece model")
        spm = _module()
        try:
            self.processor = spm.SentencePieceProcessor(model_proto=proto)
        except (RuntimeError, OSError, ValueError) as e:
            raise ModelError(f"{path}: not a SentencePiece model ({e})") from e
        if self.processor.get_piece_size() == 0:
            raise ModelError(f"{path}: SentencePiece model without pieces")

    def encode(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        if _SURROGATES.search(text):
            warnings.warn(f"{self.path}: the text holds characters that are not valid "
                          "Unicode (lone surrogates); they are encoded as U+FFFD",
                          stacklevel=3)
            text = _SURROGATES.sub("\ufffd", text)
        return self.processor.encode(text, out_type=str)

    def decode(self, tokens: list[str]) -> str:
        return self.processor.decode_pieces(list(tokens))
