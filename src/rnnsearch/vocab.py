"""Vocabularies: one token per line, the line number is the id."""
from __future__ import annotations

from .errors import ModelError
from .limits import MAX_VOCAB, MAX_VOCAB_BYTES
from .safe_files import read_text
from .safetensors_io import atomic_write


class Vocabulary:
    def __init__(self, tokens: list[str], where: str = "vocabulary"):
        self.tokens = tokens
        self.ids: dict[str, int] = {}
        for index, token in enumerate(tokens):
            if not isinstance(token, str) or "\n" in token or token == "":
                raise ModelError(f"{where}: line {index + 1}: tokens must be non-empty "
                                 "strings without newlines")
            if token in self.ids:
                raise ModelError(f"{where}: token {token!r} appears twice (lines "
                                 f"{self.ids[token] + 1} and {index + 1})")
            self.ids[token] = index
        self.where = where

    @classmethod
    def load(cls, path: str) -> "Vocabulary":
        """One token per line (a regular file of at most limits.MAX_VOCAB_BYTES)."""
        text = read_text(path, "vocabulary file", MAX_VOCAB_BYTES)
        if text.endswith("\n"):
            text = text[:-1]
        tokens = text.split("\n") if text else []
        if not tokens:
            raise ModelError(f"{path}: empty vocabulary")
        if len(tokens) > MAX_VOCAB:
            raise ModelError(f"{path}: {len(tokens)} tokens; at most {MAX_VOCAB} are supported")
        return cls(tokens, where=path)

    def check_encodable(self) -> None:
        """ModelError unless every token can be written as UTF-8 (no lone surrogates)."""
        try:
            "\n".join(self.tokens).encode("utf-8")
        except UnicodeEncodeError:
            for index, token in enumerate(self.tokens):
                try:
                    token.encode("utf-8")
                except UnicodeEncodeError:
                    raise ModelError(f"{self.where}: line {index + 1} ({token!r}) is not "
                                     "valid Unicode text") from None

    def save(self, path: str) -> None:
        with atomic_write(path, "w", encoding="utf-8") as f:
            for token in self.tokens:
                f.write(token + "\n")

    def require(self, special_tokens: dict, names: list[str], side: str) -> None:
        for name in names:
            if special_tokens[name] not in self.ids:
                raise ModelError(f"{self.where}: the {side} vocabulary lacks the {name} token "
                                 f"{special_tokens[name]!r} (config.json special_tokens.{name})")

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str, unk_id: int) -> int:
        return self.ids.get(token, unk_id)
