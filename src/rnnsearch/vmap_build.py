"""`rnnsearch build-vmap`: a vocabulary map (docs/vmap.md) from a parallel corpus.

Alignment-free: every source token of a sentence pair co-occurs with every target token of
it. A source token's rule lists the `top_k` target tokens of the highest Dice coefficient
2 c(s, t) / (c(s) + c(t)) (c: the number of sentence pairs holding the token, or the pair)
that co-occur at least `min_count` times; the `frequent` most frequent target tokens are
always candidates (the map's empty n-gram line), as in Marian's lexical shortlists.

The corpus is untrusted input (docs/security.md): only regular files are read, each line
at most `max_line_bytes` bytes and `max_line_tokens` tokens, at most `max_lines` pairs;
the number of distinct (source, target) pairs kept is bounded (rare pairs are dropped
first when it is reached). Bad input is a ValueError naming the file and the line."""
from __future__ import annotations

import argparse

import numpy as np

from .errors import ModelError
from .safe_files import open_regular
from .vocab_map import write_vocab_map

MAX_LINE_BYTES = 1 << 20
MAX_LINE_TOKENS = 1024
MAX_LINES = 50_000_000
MAX_PAIRS = 20_000_000      # distinct (source, target) pairs counted at once
CHUNK = 20_000              # sentence pairs counted per NumPy pass


def corpus_lines(path: str, what: str, max_line_bytes: int = MAX_LINE_BYTES):
    """(line number, text) of a UTF-8 text file, read as untrusted input."""
    try:
        f = open_regular(path, what)
    except ModelError as e:
        raise ValueError(str(e)) from None
    with f:
        for number in range(1, MAX_LINES + 2):
            raw = f.readline(max_line_bytes + 1)
            if not raw:
                return
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                raise ValueError(f"{what} {path}: line {number} is longer than "
                                 f"{max_line_bytes} bytes")
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise ValueError(f"{what} {path}: line {number} is not UTF-8 text") from None


class _Index:
    """Token <-> integer, in order of first appearance."""

    def __init__(self):
        self.ids: dict[str, int] = {}
        self.tokens: list[str] = []

    def __call__(self, token: str) -> int:
        i = self.ids.get(token)
        if i is None:
            i = self.ids[token] = len(self.tokens)
            self.tokens.append(token)
        return i


class CooccurrenceCounts:
    """Sentence-level counts of source tokens, target tokens and their pairs."""

    def __init__(self, max_pairs: int = MAX_PAIRS):
        self.source, self.target = _Index(), _Index()
        self.source_count = np.zeros(0, np.int64)
        self.target_count = np.zeros(0, np.int64)
        self.target_frequency = np.zeros(0, np.int64)   # occurrences, not sentences
        self.pairs = np.zeros(0, np.int64)              # source << 32 | target, ascending
        self.pair_count = np.zeros(0, np.int64)
        self.max_pairs = max_pairs
        self._pending: list[np.ndarray] = []
        self._pending_sentences = 0

    def add(self, source_tokens: list[str], target_tokens: list[str]) -> None:
        s = np.unique(np.fromiter(map(self.source, source_tokens), np.int64))
        t_all = np.fromiter(map(self.target, target_tokens), np.int64)
        t = np.unique(t_all)
        self._grow()
        self.source_count[s] += 1
        self.target_count[t] += 1
        np.add.at(self.target_frequency, t_all, 1)
        if s.size and t.size:
            self._pending.append(((s[:, None] << 32) | t[None, :]).reshape(-1))
        self._pending_sentences += 1
        if self._pending_sentences >= CHUNK:
            self.flush()

    def _grow(self) -> None:
        for name, size in (("source_count", len(self.source.tokens)),
                           ("target_count", len(self.target.tokens)),
                           ("target_frequency", len(self.target.tokens))):
            array = getattr(self, name)
            if array.size < size:
                setattr(self, name, np.concatenate([array, np.zeros(max(size, 2 * array.size)
                                                                    - array.size, np.int64)]))

    def flush(self) -> None:
        """Merge the pending sentences' pairs into the counts."""
        if not self._pending:
            return
        codes = np.concatenate([self.pairs, *self._pending])
        weights = np.concatenate([self.pair_count,
                                  np.ones(codes.size - self.pairs.size, np.int64)])
        self._pending, self._pending_sentences = [], 0
        order = np.argsort(codes, kind="stable")
        codes, weights = codes[order], weights[order]
        starts = np.flatnonzero(np.concatenate([[True], codes[1:] != codes[:-1]]))
        self.pairs, self.pair_count = codes[starts], np.add.reduceat(weights, starts)
        threshold = 1
        while self.pairs.size > self.max_pairs:   # bounded memory: rare pairs go first
            keep = self.pair_count > threshold
            self.pairs, self.pair_count = self.pairs[keep], self.pair_count[keep]
            threshold += 1

    def rules(self, top_k: int, min_count: int, exclude=frozenset()
              ) -> dict[tuple[str], list[str]]:
        """Each source token's top_k target tokens by Dice coefficient (ties: more
        co-occurrences, then the token), leaving out the `exclude`d target tokens."""
        self.flush()
        src, tgt = self.pairs >> 32, self.pairs & 0xFFFFFFFF
        keep = self.pair_count >= min_count
        if exclude:
            excluded = np.array([self.target.ids[t] for t in exclude if t in self.target.ids],
                                np.int64)
            keep &= ~np.isin(tgt, excluded)
        src, tgt, count = src[keep], tgt[keep], self.pair_count[keep]
        dice = 2.0 * count / (self.source_count[src] + self.target_count[tgt])
        # grouped by source token; within a group best first (ties: more co-occurrences,
        # then the target token seen first in the corpus)
        order = np.lexsort((tgt, -count, -dice, src))
        src, tgt = src[order], tgt[order]
        starts = np.flatnonzero(np.concatenate([[True], src[1:] != src[:-1]]))
        rank = np.arange(src.size) - np.repeat(starts, np.diff(np.append(starts, src.size)))
        rules: dict[tuple[str], list[str]] = {}
        for s, t in zip(src[rank < top_k].tolist(), tgt[rank < top_k].tolist()):
            rules.setdefault((self.source.tokens[s],), []).append(self.target.tokens[t])
        return dict(sorted(rules.items()))

    def most_frequent(self, n: int) -> list[str]:
        order = sorted(range(len(self.target.tokens)),
                       key=lambda i: (-self.target_frequency[i], self.target.tokens[i]))
        return [self.target.tokens[i] for i in order[:n]]


def build_vocab_map(pairs, top_k: int = 20, frequent: int = 100, min_count: int = 1,
                    max_pairs: int = MAX_PAIRS):
    """(rules, always-included target tokens) from (source tokens, target tokens) pairs."""
    counts = CooccurrenceCounts(max_pairs)
    for source_tokens, target_tokens in pairs:
        counts.add(source_tokens, target_tokens)
    always = counts.most_frequent(frequent)
    return counts.rules(top_k, min_count, exclude=frozenset(always)), always


def _tokenized_pairs(args, translator):
    """(source tokens, target tokens) of the corpus's line pairs, checked."""
    source = corpus_lines(args.source, "source corpus", args.max_line_bytes)
    target = corpus_lines(args.target, "target corpus", args.max_line_bytes)
    for count in range(args.max_lines):
        s, t = next(source, None), next(target, None)
        if s is None or t is None:
            if s is not None or t is not None:
                longer, line = ("source", s[0]) if s is not None else ("target", t[0])
                raise ValueError(f"the {longer} corpus has more lines than the other "
                                 f"(line {line})")
            return
        if translator is not None:
            src = [tok for unit in translator.split_line(s[1]) for tok in unit]
            tgt = [tok for tok in translator.target_tokenizer.encode(t[1])
                   if tok in translator.target_vocab.ids]
        else:
            src, tgt = s[1].split(), t[1].split()
        for side, tokens, (number, _) in (("source", src, s), ("target", tgt, t)):
            if len(tokens) > args.max_line_tokens:
                raise ValueError(f"{side} corpus line {number}: {len(tokens)} tokens; at most "
                                 f"{args.max_line_tokens} (--max-line-tokens)")
        yield src, tgt


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser("build-vmap", help="build a vocabulary map (vmap.txt) from a parallel "
                                          "corpus, for translate --use-vmap")
    p.add_argument("--source", required=True, metavar="FILE", help="source side, one "
                   "sentence per line")
    p.add_argument("--target", required=True, metavar="FILE", help="target side, line by line")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="the map to write (put it in the model directory as vmap.txt)")
    p.add_argument("-m", "--model", help="tokenize with this model's tokenizers and keep "
                   "its target vocabulary (default: split on whitespace)")
    p.add_argument("--top-k", type=_positive, default=20,
                   help="target tokens per source token (default 20)")
    p.add_argument("--frequent", type=int, default=100,
                   help="most frequent target tokens, always candidates (default 100)")
    p.add_argument("--min-count", type=_positive, default=1,
                   help="sentence pairs a (source, target) pair must share (default 1)")
    p.add_argument("--max-lines", type=_positive, default=MAX_LINES,
                   help=f"read at most this many line pairs (default {MAX_LINES})")
    p.add_argument("--max-line-bytes", type=_positive, default=MAX_LINE_BYTES,
                   help=f"longest line accepted (default {MAX_LINE_BYTES})")
    p.add_argument("--max-line-tokens", type=_positive, default=MAX_LINE_TOKENS,
                   help=f"most tokens in a line (default {MAX_LINE_TOKENS})")
    p.set_defaults(func=cmd_build_vmap)


def cmd_build_vmap(args) -> int:
    if args.frequent < 0:
        raise ValueError(f"--frequent must be >= 0, got {args.frequent}")
    translator = None
    if args.model:
        from .translator import Translator
        translator = Translator(args.model)
    rules, always = build_vocab_map(_tokenized_pairs(args, translator), args.top_k,
                                    args.frequent, args.min_count)
    write_vocab_map(args.output, rules, always)
    return 0
