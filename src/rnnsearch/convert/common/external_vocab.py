"""Vocabulary files, special tokens and tokenizer options shared by the `onnx` and `torch`
converters (formats whose exports carry no vocabulary of their own)."""
from __future__ import annotations

import argparse

from ...errors import ModelError
from ...safe_files import parse_json
from ...vocab import Vocabulary
from .tokenizer_options import add_tokenizer_arguments, resolve_tokenizers, warn_guessed

DEFAULT_SPECIALS = {"pad": "<pad>", "unk": "<unk>", "bos": "<s>", "eos": "</s>"}


def add_vocab_arguments(parser: argparse.ArgumentParser, required: bool = True,
                        source_required: bool | None = None) -> None:
    """source_required (default: required) False: a features model has no source
    vocabulary."""
    g = parser.add_argument_group("vocabularies and special tokens")
    g.add_argument("--source-vocab",
                   required=required if source_required is None else source_required,
                   metavar="FILE",
                   help="source vocabulary: one token per line, line number = token id")
    g.add_argument("--target-vocab", required=required, metavar="FILE",
                   help="target vocabulary: one token per line, line number = token id")
    # defaults are None: an option the user gave is told apart from one left out (the
    # torch converter merges them with the architecture file's sections)
    for name, default in DEFAULT_SPECIALS.items():
        g.add_argument(f"--{name}-token", metavar="TOKEN",
                       help=f"the {name.upper()} token (default {default})")
    g.add_argument("--source-add-bos", action="store_true", default=None,
                   help="the model expects BOS before every source sentence")
    g.add_argument("--source-add-eos", action="store_true", default=None,
                   help="the model expects EOS after every source sentence")
    g.add_argument("--source-tokenizer", choices=["whitespace", "chars"],
                   help="how a source string is split into tokens (default whitespace; "
                        "subword models: --source-spm or --bpe-codes)")
    g.add_argument("--target-tokenizer", choices=["whitespace", "chars"],
                   help="how output tokens are joined (default whitespace)")
    g.add_argument("--lowercase", action="store_true", default=None,
                   help="lower-case source strings")
    g.add_argument("--max-source-length", type=int, metavar="N",
                   help="longest source the model accepts (default 1024)")
    add_tokenizer_arguments(parser)


def read_vocab(path: str) -> list[str]:
    return list(Vocabulary.load(path).tokens)


def vocab_from_metadata(model, keys: tuple[str, ...]) -> list[str] | None:
    """A vocabulary stored in an ONNX model's metadata_props under one of `keys`, as a
    JSON list of strings or as newline-separated tokens."""
    props = {p.key: p.value for p in model.metadata_props} if model is not None else {}
    for key in keys:
        if key in props:
            text = props[key]
            try:
                tokens = parse_json(text, f"metadata '{key}'")
                if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
                    raise ValueError
            except ValueError:   # ModelError too: not JSON, so one token per line
                tokens = text[:-1].split("\n") if text.endswith("\n") else text.split("\n")
            return list(Vocabulary(tokens, where=f"metadata '{key}'").tokens)
    return None


def special_tokens(args) -> dict:
    return {name: getattr(args, f"{name}_token", default) or default
            for name, default in DEFAULT_SPECIALS.items()}


# option attribute -> (section, field)
_FIELDS = {"source_tokenizer": ("source", "tokenizer"), "lowercase": ("source", "lowercase"),
           "source_add_bos": ("source", "add_bos"), "source_add_eos": ("source", "add_eos"),
           "max_source_length": ("source", "max_length"),
           "target_tokenizer": ("target", "tokenizer")}


def given_sections(args) -> dict:
    """The special_tokens, source and target fields the user gave on the command line
    (subword tokenizer options included), and nothing else."""
    given = {"special_tokens": {}, "source": {}, "target": {}}
    for name in DEFAULT_SPECIALS:
        if getattr(args, f"{name}_token", None):
            given["special_tokens"][name] = getattr(args, f"{name}_token")
    for attribute, (section, field) in _FIELDS.items():
        value = getattr(args, attribute, None)
        if value is not None:
            given[section][field] = value
    fields, _ = resolve_tokenizers(args)
    for side, section in fields.items():
        if "tokenizer" in given[side]:
            raise ModelError(f"--{side}-tokenizer and a {side} subword model both name the "
                             f"{side} tokenizer; give one")
        given[side].update(section)
    return given


def tokenizer_files(args) -> dict[str, str]:
    """The subword model files the options name, to copy into the model directory."""
    return resolve_tokenizers(args)[1]


def mark_guessed(config: dict, why: str = "the export records no tokenizer") -> None:
    """A side whose tokenizer nobody named is whitespace, marked as guessed (and said)."""
    for side in ("source", "target"):
        section = config.setdefault(side, {})
        if section.get("kind") == "features":   # frames are not text
            continue
        if "tokenizer" not in section:
            section["tokenizer"] = "whitespace"
            section["tokenizer_guessed"] = True
            warn_guessed(side, "whitespace", why)


def sections(args) -> dict:
    """The special_tokens, source and target sections of config.json: what the user gave,
    defaults for the rest (a tokenizer nobody named is marked guessed)."""
    result = given_sections(args)
    result["special_tokens"] = special_tokens(args)
    mark_guessed(result)
    return result


def merge_sections(config: dict, given: dict, where: str) -> None:
    """Put the command line's fields (given_sections) into the config's sections field by
    field; a field both set to different values is an error naming it (never a silent
    choice)."""
    flags = {v: k for k, v in _FIELDS.items()}
    for section, fields in given.items():
        target = config.setdefault(section, {})
        if not isinstance(target, dict):
            raise ModelError(f"{where}: '{section}' must be an object")
        for field, value in fields.items():
            if field in target and target[field] != value:
                flag = flags.get((section, field), f"{section} option")
                flag = f"--{flag.replace('_', '-')}" if (section, field) in flags else \
                    f"--{field}-token" if section == "special_tokens" else "a tokenizer option"
                raise ModelError(f"{where} sets {section}.{field} = {target[field]!r} but "
                                 f"{flag} says {value!r}: remove one")
            target[field] = value


def check_vocabularies(config: dict, source: list[str], target: list[str],
                       source_rows: int, target_rows: int, target_out_rows: int | None = None
                       ) -> None:
    """Clear errors for vocabularies that do not fit the weights or lack special tokens."""
    specials = config["special_tokens"]
    if config["source"].get("kind") == "features":   # frames: no source vocabulary
        if source:
            raise ModelError("a features model (source.kind 'features') has no source "
                             "vocabulary; leave --source-vocab out")
        source, source_rows = [], 0
    elif source is None:
        raise ModelError("a source vocabulary is needed (--source-vocab) for a model that "
                         "reads tokens")
    if len(source) != source_rows:
        raise ModelError(f"the source vocabulary has {len(source)} tokens but the source "
                         f"embedding has {source_rows} rows")
    if len(target) != target_rows:
        raise ModelError(f"the target vocabulary has {len(target)} tokens but the target "
                         f"embedding has {target_rows} rows")
    if target_out_rows is not None and target_out_rows != len(target):
        raise ModelError(f"the target vocabulary has {len(target)} tokens but the output layer "
                         f"has {target_out_rows} rows")
    src = config["source"]
    need_src = [] if src.get("kind") == "features" else \
        ["pad", "unk"] + [t for t, f in (("bos", "add_bos"), ("eos", "add_eos")) if src.get(f)]
    for side, vocab, names in (("source", source, need_src),
                               ("target", target, ["bos", "eos", "unk"])):
        have = set(vocab)
        for name in names:
            if specials[name] not in have:
                raise ModelError(f"the {side} vocabulary lacks the {name.upper()} token "
                                 f"{specials[name]!r} (set it with --{name}-token)")
