"""Marian RNN models (--type s2s, nematus, amun: a model.npz, its vocabularies and
decoder options) -> an rnnsearch model directory (docs/convert-marian.md).

Marian need not be installed: the .npz is read with NumPy, the YAML files with PyYAML.
"""
from __future__ import annotations

import argparse
import math

from ...errors import ModelError
from ...model_dir import write_model_dir
from ...tokenizers import tokenizer_section
from . import files, mapping, names
from . import options as marian_options

DESCRIPTION = "Marian RNN model (model.npz of --type s2s, nematus or amun)"

# marian-decoder's --max-length: the longest source it reads (its EOS included)
SOURCE_MAX_LENGTH = 1000
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
    # marian-decoder never outputs <unk> (unless --allow-unk) nor byte-fallback control
    # pieces (unless --allow-special)
    suppress = [] if _flag(decoder, "allow-unk", decoder_path) else [target["unk"]]
    if not _flag(decoder, "allow-special", decoder_path):
        suppress += sorted(t for t in target["tokens"] if t in _CONTROL_PIECES)
    config = {
        # Marian reads no BOS: the first step's embedding is zeros; EOS stands in for the
        # BOS and padding tokens the format names
        "special_tokens": {"pad": source["eos"], "unk": source["unk"], "bos": target["eos"],
                           "eos": target["eos"]},
        "source": {"add_eos": True, "max_length": SOURCE_MAX_LENGTH},
        "target": {"suppress_tokens": suppress},
        "decoding": _decoding(decoder, decoder_path),
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
    return tokenizer_section("sentencepiece", side, path)


def _flag(decoder: dict, key: str, where: str | None) -> bool:
    value = decoder.get(key, False)
    if not isinstance(value, bool):
        raise ModelError(f"{where}: {key} = {value!r}; expected true or false")
    return value


def _number(decoder: dict, key: str, default: float, where: str | None, low: float,
            integer: bool = False) -> float:
    value = decoder.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or value < low or (integer and value != int(value)):
        bound = f" >= {low:g}" if low > -math.inf else ""
        raise ModelError(f"{where}: {key} = {value!r}; expected "
                         f"{'an integer' if integer else 'a finite number'}{bound}")
    return int(value) if integer else float(value)


def _decoding(decoder: dict, where: str | None) -> dict:
    """marian-decoder's search options saved with the model (Marian's defaults where absent:
    beam 12, --normalize 0, --word-penalty 0, --max-length-factor 3) as the model directory's
    decoding defaults, with Marian's search."""
    factor = _number(decoder, "max-length-factor", 3.0, where, 1e-6)
    return {"beam_size": _number(decoder, "beam-size", 12, where, 1, integer=True),
            "shrinking_beam": True,
            "length_normalization": _number(decoder, "normalize", 0.0, where, -math.inf),
            "word_penalty": _number(decoder, "word-penalty", 0.0, where, -math.inf),
            "max_length_factor": factor,
            # the factor is the limit; this only bounds it for the longest source allowed
            "max_decoding_length": max(1, math.ceil(factor * SOURCE_MAX_LENGTH))}


def convert_marian(model_path: str, output: str, vocab_paths: list[str] | None = None,
                   decoder_config: str | None = None, model_config: str | None = None) -> None:
    config, tensors, source, target, tokenizer_files = build(model_path, vocab_paths,
                                                             decoder_config, model_config)
    write_model_dir(output, config, tensors, source, target, files=tokenizer_files)


def convert(args: argparse.Namespace) -> None:
    convert_marian(args.model, args.output, args.vocabs, args.decoder_config, args.model_config)
