"""The dynamic vocabulary of a copy model's sentence, built as OpenNMT-py 0.x-2.x builds it
(`onmt.inputters.dataset_base._dynamic_dict`, a torchtext Vocab of the sentence's tokens):
the source's unknown and padding tokens first, then its words by descending count, equal
counts in string order. A source position copies its word's entry; an entry the target
vocabulary also has (any target id but 0) hands its probability to that target word
(`collapse_copy_scores`). Output ids past the target vocabulary name entries of it.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class DynamicVocabulary:
    words: list[str]          # entry -> word
    source_map: list[int]     # source position -> entry
    collapse: list[int]       # entry -> target id it adds to, or -1


def dynamic_vocabulary(tokens: list[str], unk: str, pad: str,
                       target_ids: dict[str, int]) -> DynamicVocabulary:
    counts = Counter(tokens)
    for special in (unk, pad):
        counts.pop(special, None)
    ranked = sorted(counts.items(), key=lambda item: item[0])
    ranked.sort(key=lambda item: item[1], reverse=True)
    words = [unk, pad] + [word for word, _ in ranked]
    index = {word: i for i, word in enumerate(words)}
    collapse = [-1] + [target_ids.get(word, 0) or -1 for word in words[1:]]
    return DynamicVocabulary(words, [index[t] for t in tokens], collapse)


def output_tokens(ids: list[int], target_tokens: list[str],
                  vocabulary: DynamicVocabulary | None) -> list[str]:
    """Target ids (copied entries past the target vocabulary) as tokens."""
    size = len(target_tokens)
    return [target_tokens[i] if i < size else vocabulary.words[i - size] for i in ids]
