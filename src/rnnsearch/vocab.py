"""Vocabularies: one token per line, the line number is the id."""
from __future__ import annotations

from .errors import ModelError
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
        try:
            with open(path, encoding="utf-8", newline="") as f:
                text = f.read()
        except FileNotFoundError as e:
            raise ModelError(f"vocabulary file not found: {path}") from e
        except (OSError, UnicodeDecodeError) as e:
            raise ModelError(f"cannot read vocabulary {path}: {e}") from e
        if text.endswith("\n"):
            text = text[:-1]
        tokens = text.split("\n") if text else []
        if not tokens:
            raise ModelError(f"{path}: empty vocabulary")
        return cls(tokens, where=path)

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
