"""Keras (2 or 3) functional encoder-decoders -> rnnsearch model directory.

Reads the TRAINING model (two inputs: source ids and target ids; one output: target
probabilities or logits), finds the encoder, bridge, attention and decoder by following the
graph from the output back to the inputs, and maps them onto the canonical "luong" decoder
(update, then attend; no input feeding) or, without attention, the "none" decoder.
Neither Keras nor TensorFlow is needed: files are read with h5py (files.py).
See docs/convert-keras.md for the supported layers and patterns.
"""
from __future__ import annotations

import argparse
import warnings

from ...errors import ModelError
from ..common.guard import input_errors
from ..common.one_hot import add_unknown_entry
from ..common.tokenizer_options import warn_guessed
from .files import load_keras
from .mapping import Mapper, Plan
from .tensors import build
from .vocab import assemble_one_hot_vocabularies, assemble_vocabularies, load_vocabulary

DESCRIPTION = ("Keras functional seq2seq with attention (.keras, legacy .h5, or .weights.h5 "
               "with --keras-config)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("keras")
    g.add_argument("input", help="the TRAINING model: model.keras, a legacy model .h5, or "
                                 "a .weights.h5 file with --keras-config")
    g.add_argument("--keras-config", help="model.to_json() output (for a weights-only file)")
    g.add_argument("--source-vocab", required=True,
                   help="source vocabulary: Keras Tokenizer JSON (tokenizer.to_json()), a "
                        "JSON word_index {token: id} or token list, or a text file with one "
                        "token per line (line number = id)")
    g.add_argument("--target-vocab", required=True, help="target vocabulary (same formats)")
    g.add_argument("--source-tokenizer", choices=("whitespace", "chars"),
                   help="how strings are split (default: chars for a char_level Tokenizer, "
                        "else whitespace)")
    g.add_argument("--target-tokenizer", choices=("whitespace", "chars"),
                   help="how output tokens are joined (default: as the target Tokenizer)")
    g.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=None,
                   help="lower-case source strings (default: the source Tokenizer's 'lower')")
    g.add_argument("--bos", help="the target start token as it appears in the vocabulary "
                                 "(default: detected, e.g. <start>, <sos>, startseq, \\t)")
    g.add_argument("--eos", help="the target end token (default: detected)")
    g.add_argument("--source-add-bos", action="store_true",
                   help="the model was trained with the start token before every source")
    g.add_argument("--source-add-eos", action="store_true",
                   help="the model was trained with the end token after every source")
    g.add_argument("--pad-token", default=None,
                   help="name given to the padding entry (id 0) (default: <pad>); for a "
                        "one-hot model, the source character sources are padded with "
                        "(with --pad-to-length; the lstm_seq2seq example pads with ' ')")
    g.add_argument("--max-source-length", type=int,
                   help="longest source accepted (default: the Input's fixed length, else 1024)")
    g.add_argument("--pad-to-length", type=int,
                   help="for a source Embedding with mask_zero=False: the length sources "
                        "were padded to (default: the Input's fixed length)")
    g.add_argument("--source-padding", choices=("post", "pre"), default="post",
                   help="where that padding went (pad_sequences(padding=...); Keras' own "
                        "default is 'pre') (default: %(default)s)")
    g.add_argument("--ignore-padding", action="store_true",
                   help="convert a mask_zero=False model anyway; sources are then NOT padded, "
                        "so results differ from Keras on padded input")


@input_errors("Keras converter")
def convert(args: argparse.Namespace) -> None:
    convert_keras(args.input, args.output, args.source_vocab, args.target_vocab,
                  keras_config=args.keras_config, source_tokenizer=args.source_tokenizer,
                  target_tokenizer=args.target_tokenizer, lowercase=args.lowercase,
                  bos=args.bos, eos=args.eos, source_add_bos=args.source_add_bos,
                  source_add_eos=args.source_add_eos, pad_token=args.pad_token,
                  max_source_length=args.max_source_length, pad_to_length=args.pad_to_length,
                  source_padding=args.source_padding, ignore_padding=args.ignore_padding)


@input_errors("Keras converter")
def convert_keras(model_path: str, output: str, source_vocab: str, target_vocab: str, *,
                  keras_config: str | None = None, source_tokenizer: str | None = None,
                  target_tokenizer: str | None = None, lowercase: bool | None = None,
                  bos: str | None = None, eos: str | None = None,
                  source_add_bos: bool = False, source_add_eos: bool = False,
                  pad_token: str | None = None, max_source_length: int | None = None,
                  pad_to_length: int | None = None, source_padding: str = "post",
                  ignore_padding: bool = False) -> dict:
    """Convert; returns the config written. ModelError on anything unsupported."""
    from ...model_dir import write_model_dir

    graph = load_keras(model_path, keras_config)
    plan = Mapper(graph).map()
    config, tensors = build(plan)

    src_info = load_vocabulary(source_vocab)
    tgt_info = load_vocabulary(target_vocab)
    one_hot = plan.source_embedding is None or plan.target_embedding is None
    if one_hot and plan.source_embedding is not None:
        raise ModelError(f"{plan.path}: the decoder reads one-hot vectors but the encoder an "
                         f"Embedding '{plan.source_embedding.name}'; models whose source is "
                         "one-hot (or neither side) are supported")
    if one_hot:
        src_tokens, tgt_tokens, specials = assemble_one_hot_vocabularies(
            plan, src_info, tgt_info, bos, eos, source_add_bos, source_add_eos, pad_token)
        suppress = add_unknown_entry(tensors, src_tokens, tgt_tokens, specials["unk"])
    else:
        src_tokens, tgt_tokens, specials = assemble_vocabularies(
            plan, src_info, tgt_info, bos, eos, source_add_bos, source_add_eos,
            pad_token or "<pad>")

    source = {"tokenizer": source_tokenizer or ("chars" if src_info.char_level else "whitespace"),
              "lowercase": src_info.lower if lowercase is None else bool(lowercase),
              "add_bos": bool(source_add_bos), "add_eos": bool(source_add_eos)}
    if max_source_length is not None:
        source["max_length"] = int(max_source_length)
    elif plan.source_length is not None:
        source["max_length"] = plan.source_length
    if src_info.filters and source["tokenizer"] == "whitespace":
        warnings.warn(f"{source_vocab}: the Keras Tokenizer removes the characters "
                      f"{src_info.filters!r} before splitting; rnnsearch's whitespace tokenizer "
                      "does not, so remove them from the text yourself (or words carrying them "
                      "become unknown)", stacklevel=2)
    target = {"tokenizer": target_tokenizer or ("chars" if tgt_info.char_level
                                                else "whitespace")}
    if one_hot:
        _one_hot_source(plan, source, pad_to_length, pad_token, source_padding)
        target["suppress_tokens"] = suppress
    else:
        _padding(plan, source, pad_to_length, source_padding, ignore_padding)
    for side, section, given, info in (("source", source, source_tokenizer, src_info),
                                       ("target", target, target_tokenizer, tgt_info)):
        if given is None and not info.tokenizer:
            section["tokenizer_guessed"] = True
            warn_guessed(side, section["tokenizer"], f"{info.path} is a bare vocabulary, not "
                                                     "a Keras Tokenizer with its settings")
    config.update({"special_tokens": specials, "source": source, "target": target})
    write_model_dir(output, config, tensors, src_tokens, tgt_tokens)
    return config


def _one_hot_source(plan: Plan, source: dict, pad_to_length, pad_token, side) -> None:
    """A model reading one-hot vectors (the lstm_seq2seq example): source.kind one_hot of
    width V. Its inputs have no mask: Keras reads a padding character as a character, so
    reproducing inputs padded to N needs --pad-to-length N and --pad-token CHAR."""
    source["kind"] = "one_hot"
    source["feature_size"] = plan.vocabulary_size("source")
    if pad_to_length is not None:
        if pad_token is None:
            raise ModelError("--pad-to-length for a one-hot model needs --pad-token: the "
                             "source character the sources were padded with (e.g. ' ')")
        source["pad_to_length"] = int(pad_to_length)
        source["padding"] = side


def _padding(plan: Plan, source: dict, pad_to_length, side, ignore) -> None:
    """A source Embedding with mask_zero=False reads the padding as real input: Keras fed
    every source padded to a fixed length N and the encoder and attention saw the pads, so
    the model directory records source.pad_to_length / source.padding."""
    if plan.source_mask_zero:
        if pad_to_length:
            warnings.warn("--pad-to-length ignored: the source Embedding has mask_zero=True, "
                          "so Keras ignored the padding", stacklevel=3)
        return
    where = f"{plan.path}: source Embedding '{plan.source_embedding.name}' has mask_zero=False"
    if ignore:
        warnings.warn(f"{where}: Keras fed it padded sources and attended over the padding; "
                      "the converted model does not pad (--ignore-padding), so its results "
                      "differ from Keras' on padded input", stacklevel=3)
        return
    length = pad_to_length or plan.source_length
    if not length:
        raise ModelError(f"{where} and the source Input has no fixed length: pass "
                         "--pad-to-length N (the maxlen the sources were padded to)")
    source["pad_to_length"] = int(length)
    source["padding"] = side
