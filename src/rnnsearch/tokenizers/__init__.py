"""The tokenizers a model directory can name (config.json `source.tokenizer` /
`target.tokenizer`): text -> tokens for the encoder, target tokens -> text.

    whitespace     split on runs of whitespace; join with one space
    chars          one token per Unicode character; join with nothing
    sentencepiece  a SentencePiece model file in the directory (`tokenizer_model`); needs the
                   `sentencepiece` package (pip install "rnnsearch[sentencepiece]")
    bpe            subword-nmt BPE codes in the directory (`tokenizer_model`), words split on
                   whitespace first, the "@@ " joiner removed on the way out

One module per tokenizer; `load_tokenizer` builds the one a config section names, and
`tokenizer_section` is what a converter calls to put a tokenizer into a model directory.
"""
from __future__ import annotations

import os

from ..errors import ModelError
from .simple import CharTokenizer, WhitespaceTokenizer

KINDS = ("whitespace", "chars", "sentencepiece", "bpe")
# tokenizers that read a file of their own from the model directory
FILE_KINDS = ("sentencepiece", "bpe")
# the file names converters give those files inside the model directory
DEFAULT_FILE_NAMES = {("sentencepiece", "source"): "source.spm.model",
                      ("sentencepiece", "target"): "target.spm.model",
                      ("bpe", "source"): "source.bpe.codes",
                      ("bpe", "target"): "target.bpe.codes"}


def load_tokenizer(kind: str, model_dir: str | None = None, model_file: str | None = None,
                   lowercase: bool = False):
    """The tokenizer `kind`, reading `model_file` (a name inside `model_dir`) when it needs
    one. ModelError naming the file when it is missing or corrupt, or when the package the
    tokenizer needs is not installed."""
    if kind == "whitespace":
        return WhitespaceTokenizer(lowercase)
    if kind == "chars":
        return CharTokenizer(lowercase)
    if kind not in FILE_KINDS:
        raise ModelError(f"unknown tokenizer {kind!r}; expected one of {list(KINDS)}")
    if not model_file:
        raise ModelError(f"the {kind} tokenizer needs its model file (tokenizer_model)")
    path = os.path.join(model_dir or ".", model_file)
    if kind == "sentencepiece":
        from .sentencepiece import SentencePieceTokenizer
        return SentencePieceTokenizer(path, lowercase)
    from .bpe import BpeTokenizer
    return BpeTokenizer(path, lowercase)


def tokenizer_section(kind: str, side: str, model_file: str | None = None,
                      file_name: str | None = None) -> tuple[dict, dict[str, str]]:
    """For converters: the `source`/`target` config fields that name tokenizer `kind`, and
    the files to copy into the model directory ({name inside the directory: path}), to pass
    to write_model_dir(..., files=...). The file is loaded once here, so a corrupt or
    missing one is refused at convert time (ModelError naming it)."""
    if side not in ("source", "target"):
        raise ValueError(f"side must be 'source' or 'target', got {side!r}")
    if kind not in FILE_KINDS:
        load_tokenizer(kind)
        return {"tokenizer": kind, "tokenizer_model": None}, {}
    if not model_file:
        raise ModelError(f"the {side} {kind} tokenizer needs its model file")
    name = file_name or DEFAULT_FILE_NAMES[(kind, side)]
    load_tokenizer(kind, os.path.dirname(os.path.abspath(model_file)),
                   os.path.basename(model_file))
    return {"tokenizer": kind, "tokenizer_model": name}, {name: model_file}


# Plain functions for the file-less tokenizers (kept for callers that only split/join).
def tokenize(text: str, kind: str, lowercase: bool = False) -> list[str]:
    if kind not in ("whitespace", "chars"):
        raise ValueError(f"unknown tokenizer {kind!r}")
    return load_tokenizer(kind, lowercase=lowercase).encode(text)


def detokenize(tokens: list[str], kind: str) -> str:
    if kind not in ("whitespace", "chars"):
        raise ValueError(f"unknown tokenizer {kind!r}")
    return load_tokenizer(kind).decode(tokens)
