"""The tokenizers without a model file: whitespace and chars."""
from __future__ import annotations


class WhitespaceTokenizer:
    """Split on runs of whitespace; join with one space."""
    kind = "whitespace"

    def __init__(self, lowercase: bool = False):
        self.lowercase = lowercase

    def encode(self, text: str) -> list[str]:
        return (text.lower() if self.lowercase else text).split()

    def decode(self, tokens: list[str]) -> str:
        return " ".join(tokens)


class CharTokenizer:
    """One token per Unicode character (spaces included); join with nothing."""
    kind = "chars"

    def __init__(self, lowercase: bool = False):
        self.lowercase = lowercase

    def encode(self, text: str) -> list[str]:
        return list(text.lower() if self.lowercase else text)

    def decode(self, tokens: list[str]) -> str:
        return "".join(tokens)
