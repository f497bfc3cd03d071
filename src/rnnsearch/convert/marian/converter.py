"""Marian RNN models (--type s2s, nematus, amun: a model.npz, its vocabularies and
decoder options) -> an rnnsearch model directory (docs/convert-marian.md).

Marian need not be installed: the .npz is read with NumPy, the YAML files with PyYAML.
"""
from __future__ import annotations

import argparse

from ...errors import ModelError
from ...model_dir import write_model_dir
from . import files, mapping, names
from . import options as marian_options

DESCRIPTION = "Marian RNN model (model.npz of --type s2s, nematus or amun)"

# byte-fallback control pieces Marian never outputs (DefaultVocab / SentencePiece)
_CONTROL_PIECES = {f"<0x{i:02X}>" for i in range(32)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="Marian model.npz")
    parser.add_argument("--vocabs", nargs=2, metavar=("SRC", "TGT"), default=None,
                        help="source and target vocabularies (.yml, .json, .spm or text; "
                        "default: the 'vocabs' of model.npz.decoder.yml)")
    parser.add_argument("--decoder-config", default=None,
                        help="marian-decoder options (default: MODEL.decoder.yml if present)")
    parser.add_argument("--model-config", default=None,
                        help="the model's options, for a .npz without special:model.yml "
                        "(default: MODEL.yml beside it)")


def _vocabularies(vocab_paths: list[str], options: dict) -> dict:
    """Both sides' tokens and special tokens, checked against dim-vocabs."""
    sides = {}
    for side, path, size in zip(("source", "target"), vocab_paths, options["dim-vocabs"]):
        tokens, kind = files.read_vocabulary(path)
        if len(tokens) != size:
            raise ModelError(f"{path}: the {side} vocabulary has {len(tokens)} entries but the "
                             f"model's embeddings have {size} rows (dim-vocabs): not this "
                             "model's vocabulary")
        eos, unk = files.special_ids(tokens, kind, path)
        tokens = list(tokens)
        if tokens[eos] == "":
            tokens[eos] = files.EOS
        if tokens[unk] == "":
            tokens[unk] = files.UNK
        sides[side] = {"tokens": tokens, "kind": kind, "eos": tokens[eos], "unk": tokens[unk],
                       "path": path}
    source, target = sides["source"], sides["target"]
    for name in ("eos", "unk"):
        if source[name] != target[name]:
            raise ModelError(f"the source and target vocabularies name {name} differently "
                             f"({source[name]!r}, {target[name]!r})")
    return sides


def build(model_path: str, vocab_paths: list[str] | None = None,
          decoder_config: str | None = None, model_config: str | None = None
          ) -> tuple[dict, dict, list[str], list[str], dict[str, str]]:
    """(config, tensors, source tokens, target tokens, tokenizer files to copy into the
    model directory) without writing anything."""
    items = files.read_npz(model_path)
    raw, where = files.model_options(items, model_path, model_config)
    options = marian_options.normalize(raw, where)
    decoder, decoder_path = files.decoder_options(model_path, decoder_config)
    if vocab_paths is None:
        vocab_paths = files.resolve_vocab_paths(decoder, decoder_path)
    sides = _vocabularies(list(vocab_paths), options)
    canonical = names.canonical_items(items, options)
    sections, tensors = mapping.architecture(canonical, options, model_path)
    source, target = sides["source"], sides["target"]
    suppress = [target["unk"]] + sorted(t for t in target["tokens"] if t in _CONTROL_PIECES)
    config = {
        # Marian reads no BOS: the first step's embedding is zeros; EOS stands in for the
        # BOS and padding tokens the format names
        "special_tokens": {"pad": source["eos"], "unk": source["unk"], "bos": target["eos"],
                           "eos": target["eos"]},
        "source": {"add_eos": True},
        "target": {"suppress_tokens": suppress},
        **sections,
    }
    tokenizer_files = {}
    for side, vocab in sides.items():
        if vocab["kind"] == "spm":  # Marian encodes and decodes the text with it
            fields, side_files = _sentencepiece_section(side, vocab["path"])
            config[side].update(fields)
            tokenizer_files.update(side_files)
    return config, tensors, source["tokens"], target["tokens"], tokenizer_files


def _sentencepiece_section(side: str, path: str) -> tuple[dict, dict]:
    """The tokenizer fields and files of a side whose vocabulary is a SentencePiece model."""
    try:
        from ...tokenizers import tokenizer_section
    except ImportError as e:
        raise ModelError(f"{path}: a SentencePiece vocabulary needs rnnsearch's SentencePiece "
                         "tokenizer, which this rnnsearch lacks") from e
    return tokenizer_section("sentencepiece", side, path)


def convert_marian(model_path: str, output: str, vocab_paths: list[str] | None = None,
                   decoder_config: str | None = None, model_config: str | None = None) -> None:
    config, tensors, source, target, tokenizer_files = build(model_path, vocab_paths,
                                                             decoder_config, model_config)
    if tokenizer_files:
        write_model_dir(output, config, tensors, source, target, files=tokenizer_files)
    else:
        write_model_dir(output, config, tensors, source, target)


def convert(args: argparse.Namespace) -> None:
    convert_marian(args.model, args.output, args.vocabs, args.decoder_config, args.model_config)
