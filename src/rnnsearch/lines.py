"""One input line's hypotheses put back together: a line is translated as one unit, or
(per-word models such as the default G2P one) as one unit per word, whose i-th
hypotheses are joined again. Shared by `rnnsearch translate` and `rnnsearch serve`."""
from __future__ import annotations


def line_hypothesis(translator, units: list[list[str]], results: list, i: int,
                    with_scores: bool = False, with_alignment: bool = False
                    ) -> tuple[str, float, list[tuple[int, int]]]:
    """(text, score, alignment) of the i-th hypothesis of a line whose units are `units`
    and their TranslationResults `results`: the units' texts joined with the model's word
    separator, their scores summed (0.0 unless with_scores; -inf when a unit's beam has
    fewer than i + 1 hypotheses, whose text is then empty), and (with_alignment) the
    (source, target) position pairs over the whole line, each target token aligned to the
    source token it attended to most."""
    texts, score, pairs, src_offset, tgt_offset = [], 0.0, [], 0, 0
    for unit, result in zip(units, results):
        if i < len(result.hypotheses):
            texts.append(translator.detokenize(result.hypotheses[i]))
            if with_scores:
                score += result.scores[i]
            if with_alignment:
                pairs += [(src_offset + s, tgt_offset + t) for s, t in
                          translator.hard_alignment(result.attention[i], len(unit))]
                tgt_offset += len(result.hypotheses[i])
        else:
            texts.append("")
            score = float("-inf")
        src_offset += len(unit)
    return translator.join_words(texts), score, pairs
