"""Subword tokenizers for converters: the --source-spm / --target-spm / --bpe-codes options,
and the choice between them and what a framework recorded (a SentencePiece model or BPE
codes named in its options). A chosen file is loaded once (a corrupt one is refused now)
and copied into the model directory."""
from __future__ import annotations

import argparse
import os
import warnings

from ...errors import ModelError
from ...safe_files import is_inside
from ...tokenizers import FILE_KINDS, tokenizer_section

SIDES = ("source", "target")


OPTIONS = (("--source-spm", "SentencePiece model that cuts source text into the model's "
                            "pieces"),
           ("--target-spm", "SentencePiece model that joins target pieces into text"),
           ("--bpe-codes", "subword-nmt BPE codes for both sides ('@@ ' joiner)"),
           ("--source-bpe-codes", "BPE codes for the source only"),
           ("--target-bpe-codes", "BPE codes for the target only"))


def add_tokenizer_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("subword tokenizers (copied into the model directory)")
    for option, text in OPTIONS:
        group.add_argument(option, metavar="FILE", help=text)


def given_tokenizers(args) -> dict[str, tuple[str, str] | None]:
    """{side: (kind, file) or None} from the command-line options; ModelError when one
    side is given two."""
    chosen = {}
    for side in SIDES:
        options = [("sentencepiece", getattr(args, f"{side}_spm", None), f"--{side}-spm"),
                   ("bpe", getattr(args, f"{side}_bpe_codes", None), f"--{side}-bpe-codes"),
                   ("bpe", getattr(args, "bpe_codes", None), "--bpe-codes")]
        given = [(kind, path, flag) for kind, path, flag in options if path]
        if len(given) > 1:
            raise ModelError(f"the {side} side has two tokenizers: "
                             f"{' and '.join(flag for _, _, flag in given)}")
        chosen[side] = given[0][:2] if given else None
    return chosen


def _inside(folder: str, path: str) -> str | None:
    """`path` as recorded by a framework, if it names a file inside `folder` (as given,
    relative to the folder, or by its base name there); None otherwise."""
    path = str(path)
    for candidate in (path, os.path.join(folder, path), os.path.join(folder,
                                                                     os.path.basename(path))):
        try:
            if os.path.isfile(candidate) and is_inside(folder, candidate):
                return candidate
        except ValueError:   # NUL in the name
            return None
    return None


def resolve_tokenizers(args, recorded: dict | None = None, framework: str = "the framework",
                       folder: str | None = None) -> tuple[dict[str, dict], dict[str, str]]:
    """The tokenizer fields of the source and target sections, and the files to copy.

    A command-line option wins; otherwise what the framework recorded ({side: (kind, path)}),
    which must still exist at that path (ModelError naming it and the option that replaces
    it) and, when `folder` is given (the input's folder), lie inside it: a path written in
    a checkpoint or config is not followed elsewhere (docs/security.md). Sides with neither
    get no fields (the converter's own choice stands)."""
    given = given_tokenizers(args)
    recorded = recorded or {}
    fields, files = {}, {}
    flags = {"sentencepiece": "--{side}-spm", "bpe": "--bpe-codes / --{side}-bpe-codes"}
    for side in SIDES:
        choice = given.get(side)
        if choice is None and recorded.get(side):
            kind, named = recorded[side]
            if kind not in FILE_KINDS:
                continue
            path = named
            if named and folder is not None:
                path = _inside(folder, named)
                if path is None and os.path.isfile(str(named)):
                    raise ModelError(
                        f"{framework} cut the {side} text with {kind} using {named!r}, which "
                        f"is outside the input's folder {folder}; files the input names are "
                        f"only read from there: pass the file with "
                        f"{flags[kind].format(side=side)}")
            if not path or not os.path.isfile(path):
                raise ModelError(
                    f"{framework} cut the {side} text with {kind} using {named!r}, which is "
                    f"not here: pass the file with {flags[kind].format(side=side)}")
            choice = (kind, path)
        if choice is None:
            continue
        section, side_files = tokenizer_section(choice[0], side, choice[1])
        fields[side] = section
        for name, path in side_files.items():
            if name in files and files[name] != path:
                raise ModelError(f"two different files for {name}")
            files[name] = path
    return fields, files


def warn_guessed(side: str, tokenizer: str, why: str) -> None:
    """Say at convert time that a side's tokenization was not recorded but guessed."""
    warnings.warn(f"the {side} tokenization is a guess ({tokenizer}): {why}; check it, or "
                  f"name it (--{side}-tokenizer, --{side}-spm, --bpe-codes)", stacklevel=3)
