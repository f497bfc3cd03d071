"""BPE with subword-nmt codes (Sennrich et al. 2016), as `subword-nmt apply-bpe` applies
them: words split on whitespace, each word segmented by the merges in the order of the
codes file, every piece but a word's last marked with the "@@" joiner. Detokenizing joins
with spaces and removes "@@ " (the usual `sed -r 's/(@@ )|(@@ ?$)//g'`).

Written here (no dependency) and tested token for token against the subword-nmt package
(tests/test_tokenizers.py). Not supported: vocabulary-restricted splitting
(--vocabulary), glossaries and BPE-dropout, none of which apply at translation time by
default.
"""
from __future__ import annotations

import re

from ..errors import ModelError
from .files import read_model_file

SEPARATOR = "@@"
_END = "</w>"
_JOINER = re.compile(r"(@@ )|(@@ ?$)")


def read_codes(path: str) -> tuple[tuple[int, ...], dict[tuple[str, str], int]]:
    """(version, {pair: rank}) of a subword-nmt codes file; ModelError naming the file and
    line on any fault. Among repeated pairs the first (lowest) rank counts, as in
    subword-nmt."""
    raw = read_model_file(path, "BPE codes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelError(f"{path}: not a BPE codes file (not UTF-8: {e})") from e
    lines = text.split("\n")
    version, first = (0, 1), 0
    if lines and lines[0].startswith("#version:"):
        try:
            version = tuple(int(x) for x in
                            re.sub(r"(\.0+)*$", "", lines[0].split()[-1]).split("."))
        except ValueError as e:
            raise ModelError(f"{path}: line 1: bad version header {lines[0]!r}") from e
        first = 1
    if version not in ((0, 1), (0, 2)):
        raise ModelError(f"{path}: BPE codes version {version} is not supported (0.1 or 0.2)")
    body = "\n".join(lines[first:]).rstrip("\n")
    ranks: dict[tuple[str, str], int] = {}
    for index, line in enumerate(body.split("\n") if body else []):
        pair = tuple(line.strip("\r\n ").split(" "))
        if len(pair) != 2 or not all(pair):
            raise ModelError(f"{path}: line {index + first + 1}: expected two subword units "
                             f"separated by a space, got {line!r}")
        ranks.setdefault(pair, index)
    return version, ranks


class BpeTokenizer:
    kind = "bpe"

    def __init__(self, path: str, lowercase: bool = False):
        self.path = path
        self.lowercase = lowercase
        self.version, self.ranks = read_codes(path)
        self._cache: dict[str, tuple[str, ...]] = {}

    def segment_word(self, word: str) -> tuple[str, ...]:
        """The pieces of one word (without joiners)."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        if len(word) == 1:
            return (word,)
        if self.version == (0, 1):
            symbols = list(word) + [_END]
        else:  # 0.2: the end-of-word mark is part of the last character
            symbols = list(word[:-1]) + [word[-1] + _END]
        while len(symbols) > 1:
            pairs = [(self.ranks[pair], i, pair)
                     for i, pair in enumerate(zip(symbols, symbols[1:])) if pair in self.ranks]
            if not pairs:
                break
            best = min(pairs)[2]
            merged, start = [], 0
            for _, position, pair in pairs:
                # every occurrence of the best pair, left to right, never overlapping
                if pair != best or position < start:
                    continue
                merged.extend(symbols[start:position])
                merged.append(best[0] + best[1])
                start = position + 2
            merged.extend(symbols[start:])
            symbols = merged
        if symbols[-1] == _END:
            symbols = symbols[:-1]
        elif symbols[-1].endswith(_END):
            symbols[-1] = symbols[-1][:-len(_END)]
        pieces = tuple(symbols)
        if len(self._cache) < 100_000:
            self._cache[word] = pieces
        return pieces

    def encode(self, text: str) -> list[str]:
        tokens = []
        for word in (text.lower() if self.lowercase else text).split():
            pieces = self.segment_word(word)
            tokens.extend(piece + SEPARATOR for piece in pieces[:-1])
            tokens.append(pieces[-1])
        return tokens

    def decode(self, tokens: list[str]) -> str:
        return _JOINER.sub("", " ".join(tokens))
