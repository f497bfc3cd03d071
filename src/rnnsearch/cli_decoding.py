"""The decoding flags of `rnnsearch translate` as Translator keyword arguments: one
mapping, shared by the local path (cli.py) and the Ray path (distributed.py), so a flag
means the same on both."""
from __future__ import annotations


def decoding_keywords(args) -> dict:
    """translate_batch's decoding options from parsed `translate` flags (None: the
    model's default)."""
    return dict(
        beam_size=args.beam_size, max_decoding_length=args.max_length,
        min_decoding_length=args.min_length, length_penalty=args.length_penalty,
        coverage_penalty=args.coverage_penalty, normalize_scores=args.normalize_scores,
        suppress_tokens=args.suppress, replace_unk=args.replace_unk,
        shrinking_beam=args.shrinking_beam, length_normalization=args.length_normalization,
        word_penalty=args.word_penalty, max_length_factor=args.max_length_factor)
