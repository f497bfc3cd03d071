"""What a JoeyNMT model directory records about its use, carried into rnnsearch's: the
subword tokenizers of `data.src` / `data.trg` (level "bpe" with tokenizer_type
"sentencepiece" and tokenizer_cfg.model_file, or "subword-nmt" and tokenizer_cfg.codes;
JoeyNMT copies the file into its model directory, where it is looked for first), and the
`testing` section as the model's decoding defaults."""
from __future__ import annotations

import os
import warnings

from ..common.tokenizer_options import resolve_tokenizers, warn_guessed

_KINDS = {"sentencepiece": ("sentencepiece", "model_file"), "subword-nmt": ("bpe", "codes")}


def _recorded(section: dict, config_dir: str):
    """(kind, path) of a side's subword model, or None."""
    if section.get("level", "word") != "bpe":
        return None
    kind, key = _KINDS.get(section.get("tokenizer_type", section.get("bpe_type",
                                                                      "sentencepiece")),
                           (None, None))
    path = (section.get("tokenizer_cfg") or {}).get(key)
    if kind is None or not path:
        return None
    beside = os.path.join(config_dir, os.path.basename(str(path)))
    return kind, beside if os.path.isfile(beside) else str(path)


def carry_tokenizers(result: dict, data: dict, config_path: str, args) -> dict[str, str]:
    """Set the source/target tokenizers of `result` (the converted config); returns the
    files to copy into the model directory."""
    config_dir = os.path.dirname(os.path.abspath(config_path))
    sections = {"source": data.get("src") or {}, "target": data.get("trg") or {}}
    recorded = {side: _recorded(section, config_dir) for side, section in sections.items()}
    fields, files = resolve_tokenizers(args, recorded, "JoeyNMT", folder=config_dir)
    for side, section in sections.items():
        if side in fields:
            result[side].update(fields[side])
        elif section.get("level", "word") == "bpe":
            result[side]["tokenizer_guessed"] = True
            warn_guessed(side, result[side]["tokenizer"], "data level 'bpe' without a "
                         "sentencepiece model_file or subword-nmt codes in tokenizer_cfg")
        cfg = section.get("tokenizer_cfg") or {}
        if cfg.get("pretokenizer", "none") != "none" or section.get("normalize", False):
            warnings.warn(f"JoeyNMT's {side} pretokenizer/normalize step is not carried "
                          "over: apply it to the text yourself", stacklevel=2)
    return files


def decoding_defaults(testing: dict, unk: str) -> dict:
    """JoeyNMT's `testing` options (with JoeyNMT's own defaults) as a decoding section."""
    testing = testing or {}
    decoding = {"beam_size": int(testing.get("beam_size", 1)),
                "num_hypotheses": int(testing.get("n_best", 1)),
                # JoeyNMT never ends a hypothesis before min_output_length (default 1)
                "min_decoding_length": max(0, int(testing.get("min_output_length", 1)))}
    if int(testing.get("max_output_length", -1)) > 0:
        decoding["max_decoding_length"] = int(testing["max_output_length"])
    alpha = testing.get("beam_alpha", testing.get("alpha", -1))
    if alpha is not None and float(alpha) > 0:
        decoding["length_penalty"] = float(alpha)
        warnings.warn("JoeyNMT's beam_alpha divides the scores by the GNMT length penalty "
                      "during the search; rnnsearch applies it to finished hypotheses, so "
                      "beam rankings can differ", stacklevel=2)
    if not testing.get("generate_unk", True):
        decoding["suppress_tokens"] = [unk]
    for option in ("repetition_penalty", "no_repeat_ngram_size"):
        if float(testing.get(option, -1)) > 1:
            warnings.warn(f"JoeyNMT's testing.{option} is not reproduced", stacklevel=2)
    return decoding
