"""OpenNMT-py's tokenizer transforms (the `transforms` option of the checkpoint) carried
into the model directory: `sentencepiece` and `bpe` (subword-nmt) become the source and
target tokenizers, with the model files the checkpoint names (src/tgt_subword_model) or the
ones given with --source-spm / --target-spm / --bpe-codes. OpenNMT-py applies the same
transforms at translation time (onmt_translate -transforms ...): the source text is cut
into pieces, and the output pieces are joined back (its `apply_reverse`), which is what
rnnsearch's tokenizers do (tests/test_convert_opennmt.py compares raw text in and out).
"""
from __future__ import annotations

import warnings

from ..common.tokenizer_options import resolve_tokenizers, warn_guessed

SUBWORD = {"sentencepiece": "sentencepiece", "bpe": "bpe"}
# transforms that change text at translation time but are not carried over
NOT_CARRIED = {"onmt_tokenize": "the OpenNMT Tokenizer (pyonmttok)",
               "normalize": "text normalisation", "uppercase": "upper-casing",
               "prefix": "a source/target prefix", "suffix": "a source/target suffix",
               "docify": "document concatenation", "inlinetags": "inline tags",
               "terminology": "terminology constraints", "fuzzymatch": "fuzzy matches"}


def carry_tokenizers(config: dict, opt, args, folder: str | None = None) -> dict[str, str]:
    """Set config's source/target tokenizer from the checkpoint's transforms (or the
    command line); returns the files to copy into the model directory. folder: the
    checkpoint's folder, the only place the files the checkpoint names are read from."""
    transforms = list(opt.get("transforms", default=None) or [])
    recorded = {}
    for name in transforms:
        if name in SUBWORD:
            recorded = {"source": (SUBWORD[name], opt.get("src_subword_model", default="")),
                        "target": (SUBWORD[name], opt.get("tgt_subword_model", default=""))}
            for side, short in (("source", "src"), ("target", "tgt")):
                if opt.get(f"{short}_subword_vocab", default="") and \
                        (opt.get(f"{short}_vocab_threshold", default=0) or 0) > 0:
                    warnings.warn(f"OpenNMT-py restricted the {side} {name} segmentation to "
                                  "a vocabulary (subword_vocab, vocab_threshold); rnnsearch "
                                  "segments without it, so rare words may be cut differently",
                                  stacklevel=2)
        elif name in NOT_CARRIED:
            warnings.warn(f"the checkpoint's '{name}' transform ({NOT_CARRIED[name]}) is not "
                          "carried over: apply it to the input (and undo it on the output) "
                          "yourself", stacklevel=2)
    fields, files = resolve_tokenizers(args, recorded, "OpenNMT-py", folder=folder)
    for side in ("source", "target"):
        if side in fields:
            config[side].update(fields[side])
        else:
            config[side]["tokenizer_guessed"] = True
            warn_guessed(side, config[side]["tokenizer"],
                         "the checkpoint records no sentencepiece or bpe transform, so "
                         "OpenNMT-py read whitespace-separated tokens made before training")
    return files
