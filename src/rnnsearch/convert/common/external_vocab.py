"""Vocabulary files, special tokens and tokenizer options shared by the `onnx` and `torch`
converters (formats whose exports carry no vocabulary of their own)."""
from __future__ import annotations

import argparse

from ...errors import ModelError
from ...safe_files import parse_json
from ...vocab import Vocabulary

DEFAULT_SPECIALS = {"pad": "<pad>", "unk": "<unk>", "bos": "<s>", "eos": "</s>"}


def add_vocab_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    g = parser.add_argument_group("vocabularies and special tokens")
    g.add_argument("--source-vocab", required=required, metavar="FILE",
                   help="source vocabulary: one token per line, line number = token id")
    g.add_argument("--target-vocab", required=required, metavar="FILE",
                   help="target vocabulary: one token per line, line number = token id")
    for name, default in DEFAULT_SPECIALS.items():
        g.add_argument(f"--{name}-token", default=default, metavar="TOKEN",
                       help=f"the {name.upper()} token (default {default})")
    g.add_argument("--source-add-bos", action="store_true",
                   help="the model expects BOS before every source sentence")
    g.add_argument("--source-add-eos", action="store_true",
                   help="the model expects EOS after every source sentence")
    g.add_argument("--source-tokenizer", choices=["whitespace", "chars"], default="whitespace",
                   help="how a source string is split into tokens (default whitespace)")
    g.add_argument("--target-tokenizer", choices=["whitespace", "chars"], default="whitespace",
                   help="how output tokens are joined (default whitespace)")
    g.add_argument("--lowercase", action="store_true", help="lower-case source strings")
    g.add_argument("--max-source-length", type=int, default=1024, metavar="N",
                   help="longest source the model accepts (default 1024)")


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


def sections(args) -> dict:
    """The special_tokens, source and target sections of config.json."""
    return {
        "special_tokens": special_tokens(args),
        "source": {"tokenizer": getattr(args, "source_tokenizer", "whitespace"),
                   "lowercase": bool(getattr(args, "lowercase", False)),
                   "add_bos": bool(getattr(args, "source_add_bos", False)),
                   "add_eos": bool(getattr(args, "source_add_eos", False)),
                   "max_length": int(getattr(args, "max_source_length", 1024))},
        "target": {"tokenizer": getattr(args, "target_tokenizer", "whitespace")},
    }


def check_vocabularies(config: dict, source: list[str], target: list[str],
                       source_rows: int, target_rows: int, target_out_rows: int | None = None
                       ) -> None:
    """Clear errors for vocabularies that do not fit the weights or lack special tokens."""
    specials = config["special_tokens"]
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
    need_src = ["pad", "unk"] + [t for t, f in (("bos", "add_bos"), ("eos", "add_eos"))
                                 if src.get(f)]
    for side, vocab, names in (("source", source, need_src),
                               ("target", target, ["bos", "eos", "unk"])):
        have = set(vocab)
        for name in names:
            if specials[name] not in have:
                raise ModelError(f"the {side} vocabulary lacks the {name.upper()} token "
                                 f"{specials[name]!r} (set it with --{name}-token)")
