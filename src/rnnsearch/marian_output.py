"""marian-decoder's output formats (src/translator/output_printer.cpp, data/alignment.cpp):
`rnnsearch translate --output-format marian|marian-nbest` with `--alignment`.

- best:   `TEXT` or `TEXT ||| ALIGNMENT`
- n-best: `LINE ||| TEXT [||| ALIGNMENT] ||| F0= LOGPROB ||| SCORE`, LINE counted from 0,
  LOGPROB the sum of the log-probabilities, SCORE the normalised score
- alignments over the model's source positions (Marian's: the tokens and the EOS it adds)
  and the target positions including the EOS step: `soft` (per target step, the weights of
  every source position, comma-separated), `hard` (each target position with the source
  position it attends to most: `s-t` pairs), or a threshold T > 0 (every pair whose
  weight exceeds T; 1 means hard), pairs sorted by source then target position.

Numbers print as C++ streams print floats by default (6 significant digits, like %g).
"""
from __future__ import annotations

import numpy as np

FORMATS = ("marian", "marian-nbest")


def number(x: float) -> str:
    return "%g" % float(x)


def parse_alignment(kind: str) -> str | float:
    """'soft', 'hard', or a positive threshold (1 is 'hard', as in Marian)."""
    if kind in ("soft", "hard"):
        return kind
    try:
        threshold = float(np.float32(kind))
    except ValueError:
        threshold = 0.0
    if not threshold > 0.0 or not np.isfinite(threshold):
        raise ValueError(f"--alignment must be soft, hard or a positive threshold, got {kind!r}")
    return "hard" if threshold == 1.0 else threshold


def alignment(attention: np.ndarray, kind: str | float) -> str:
    """attention [target steps, source positions] as Marian prints it."""
    attention = np.asarray(attention, dtype=np.float32)
    if kind == "soft":
        return " ".join(",".join(number(a) for a in row) for row in attention)
    pairs = []
    for t, row in enumerate(attention):
        if kind == "hard":
            if row.size:
                pairs.append((int(np.argmax(row)), t))  # the first maximum, as Marian
        else:
            pairs.extend((int(s), t) for s in np.flatnonzero(row > np.float32(kind)))
    return " ".join(f"{s}-{t}" for s, t in sorted(pairs))


def best_line(text: str, attention: np.ndarray | None, kind: str | float | None) -> str:
    if kind is None:
        return text
    return f"{text} ||| {alignment(attention, kind)}"


def nbest_line(line: int, text: str, attention: np.ndarray | None, kind: str | float | None,
               log_prob: float, score: float) -> str:
    fields = [str(line), text]
    if kind is not None:
        fields.append(alignment(attention, kind))
    fields += [f"F0= {number(log_prob)}", number(score)]
    return " ||| ".join(fields)


def result_lines(line: int, texts: list[str], result, n_best: int, nbest_format: bool,
                 kind: str | float | None) -> list[str]:
    """The output lines of one input line from its TranslationResult (with scores, and
    with the attention including the EOS step when kind is set) and its hypotheses'
    texts: the best hypothesis, or the first n_best as n-best lines."""
    attention = result.attention if kind is not None else [None] * len(texts)
    if not nbest_format:
        return [best_line(texts[0], attention[0], kind)]
    return [nbest_line(line, text, att, kind, log_prob, score) for text, att, log_prob, score
            in list(zip(texts, attention, result.log_probs, result.scores))[:n_best]]
