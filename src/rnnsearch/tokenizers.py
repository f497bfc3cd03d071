"""The tokenizers a model directory can name: split strings into tokens and join them back."""
from __future__ import annotations


def tokenize(text: str, kind: str, lowercase: bool = False) -> list[str]:
    if lowercase:
        text = text.lower()
    if kind == "whitespace":
        return text.split()
    if kind == "chars":
        return list(text)
    raise ValueError(f"unknown tokenizer {kind!r}")


def detokenize(tokens: list[str], kind: str) -> str:
    if kind == "whitespace":
        return " ".join(tokens)
    if kind == "chars":
        return "".join(tokens)
    raise ValueError(f"unknown tokenizer {kind!r}")
