"""Streaming on top of Translator.translate_batch, with CTranslate2's semantics.

- translate_iterable (with an optional iterable of target prefixes) and score_iterable:
  translate or score an iterable of any length, reading ahead a window of examples,
  sorting the window by length, processing it in batches (in a background thread, so
  reading the next window overlaps decoding) and yielding the results in input order.
- generate_tokens: yields each token as the greedy search chooses it. The engine reports
  every step through a C callback that takes the GIL only to hand the token over; closing
  the generator makes the callback return True, which ends the search at once and frees
  everything.

Nothing here imports the translator: both take a Translator (duck-typed) as an argument,
and translator.py exposes them as methods.
"""
from __future__ import annotations

import collections
import itertools
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

BATCH_TYPES = ("examples", "tokens")
READ_AHEAD = 16   # translate_iterable reads this many batches' worth at a time, as CTranslate2


@dataclass(frozen=True)
class GenerationStepResult:
    """One greedy decoding step of one sentence (CTranslate2's fields). The last step of a
    sentence (is_last) is its end token, or the last token when max_decoding_length or the
    callback stopped it."""
    step: int
    batch_id: int
    token_id: int
    token: str
    log_prob: float
    is_last: bool
    hypothesis_id: int = 0


def token_reporter(callback: Callable[[GenerationStepResult], object],
                   target_tokens: list[str], offset: int = 0):
    """The engine's on_token function (sentence, step, id, log_prob, is_last) that hands
    `callback` a GenerationStepResult; a true return ends that sentence. offset: the
    index of the engine call's first sentence in the caller's batch."""
    def on_token(sentence: int, step: int, token_id: int, log_prob: float, is_last: bool):
        return bool(callback(GenerationStepResult(step, sentence + offset, token_id,
                                                  target_tokens[token_id], log_prob, is_last)))
    return on_token


def batch_increment(example: list, batch_type: str) -> int:
    return len(example) if batch_type == "tokens" else 1


def split_batches(examples: list[list[str]], max_batch_size: int,
                  batch_type: str) -> list[list[int]]:
    """Indices of `examples`, longest first, cut into batches: at most max_batch_size
    examples, or (batch_type "tokens") at most max_batch_size padded tokens (examples x
    longest length; a longer example still gets a batch of its own)."""
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i]))
    batches, current, widest = [], [], 0
    for i in order:
        width = max(widest, batch_increment(examples[i], batch_type))
        if current and (len(current) + 1) * width > max_batch_size:
            batches.append(current)
            current, width = [], batch_increment(examples[i], batch_type)
        current.append(i)
        widest = width
    if current:
        batches.append(current)
    return batches


def read_windows(examples: Iterable[tuple], size: int, batch_type: str) -> Iterator[list]:
    """The examples (tuples whose first item is the source) in consecutive windows of
    `size` examples or source tokens."""
    window, filled = [], 0
    for example in examples:
        window.append(example)
        filled += batch_increment(example[0], batch_type)
        if filled >= size:
            yield window
            window, filled = [], 0
    if window:
        yield window


def check_batching(max_batch_size: int, batch_type: str) -> None:
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or \
            max_batch_size < 1:
        raise ValueError(f"max_batch_size must be a positive integer, got {max_batch_size!r}")
    if batch_type not in BATCH_TYPES:
        raise ValueError(f"batch_type must be one of {list(BATCH_TYPES)}, got {batch_type!r}")


_MISSING = object()


def paired(source: Iterable, other: Iterable | None, name: str) -> Iterator[tuple]:
    """(source, other) examples read side by side ((source,) without `other`); ValueError
    when one iterable ends before the other (as CTranslate2's "Input iterables do not have
    the same length"), raised when the shorter one runs out."""
    if other is None:
        return ((example,) for example in source)
    if isinstance(other, (str, bytes)):
        raise TypeError(f"{name} must be an iterable of token lists, not a string")

    sources, others = iter(source), iter(other)   # not iterable: TypeError now

    def pairs():
        for example, entry in itertools.zip_longest(sources, others, fillvalue=_MISSING):
            if example is _MISSING or entry is _MISSING:
                raise ValueError(f"source and {name} do not have the same length")
            yield example, entry
    return pairs()


def translate_iterable(translator, source: Iterable[list[str]],
                       target_prefix: Iterable[list[str] | None] | None = None,
                       max_batch_size: int = 32, batch_type: str = "examples",
                       **options) -> Iterator:
    """Translate an iterable of token lists of any length, with an optional iterable of
    target prefixes beside it (one per example, None for none: translate_batch's
    target_prefix); yields one TranslationResult per example, in input order. Options are
    those of translate_batch."""
    check_batching(max_batch_size, batch_type)

    def translate(batch):
        prefixes = None if target_prefix is None else [example[1] for example in batch]
        return translator.translate_batch([example[0] for example in batch],
                                          target_prefix=prefixes, **options)
    return _process(translate, paired(source, target_prefix, "target_prefix"),
                    max_batch_size, batch_type)


def score_iterable(translator, source: Iterable[list[str]], target: Iterable[list[str]],
                   max_batch_size: int = 64, batch_type: str = "examples") -> Iterator:
    """Score an iterable of target token lists given an iterable of sources (score_batch,
    as CTranslate2's score_iterable); yields one ScoringResult per example, in order."""
    check_batching(max_batch_size, batch_type)

    def score(batch):
        return translator.score_batch([example[0] for example in batch],
                                      [example[1] for example in batch])
    return _process(score, paired(source, target, "target"), max_batch_size, batch_type)


def _process(run: Callable[[list], list], examples: Iterator[tuple], max_batch_size: int,
             batch_type: str) -> Iterator:
    window_size = max_batch_size * READ_AHEAD if max_batch_size > 1 else 1
    return _process_windows(run, read_windows(examples, window_size, batch_type),
                            max_batch_size, batch_type)


def _process_window(run, window, max_batch_size, batch_type) -> list:
    results = [None] * len(window)
    sources = [example[0] for example in window]
    for batch in split_batches(sources, max_batch_size, batch_type):
        for i, result in zip(batch, run([window[i] for i in batch])):
            results[i] = result
    return results


def _process_windows(run, windows, max_batch_size, batch_type):
    # One window is processed in the background while the next is read; at most two are
    # held.
    pending = collections.deque()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnsearch-iterable")
    try:
        for window in windows:
            pending.append(pool.submit(_process_window, run, window, max_batch_size,
                                       batch_type))
            while len(pending) > 1 or (pending and pending[0].done()):
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_DONE = object()


def generate_tokens(translator, source: list[str], **options) -> Iterator[GenerationStepResult]:
    """Yield each token of `source`'s greedy translation as it is decoded (the last one,
    is_last, is the end token unless max_decoding_length stopped it). Closing the
    generator (break, close(), garbage collection) stops the decoding at the next step.
    Options are those of translate_batch; beam_size must be 1."""
    return _generate(translator, source, greedy_options(options))


def greedy_options(options: dict) -> dict:
    """translate_batch options for streaming one sentence: beam_size 1, no callback of the
    caller's."""
    options = dict(options)
    if options.setdefault("beam_size", 1) != 1:
        raise ValueError("generate_tokens decodes greedily: beam_size must be 1 (beam "
                         "search knows no token before it ends)")
    for name in ("callback", "num_hypotheses"):
        if name in options:
            raise TypeError(f"generate_tokens takes no {name} option")
    if options.get("target_prefix") is not None:   # one sentence: its prefix, as CTranslate2
        options["target_prefix"] = [options["target_prefix"]]
    return options


def _generate(translator, source, options):
    steps = queue.SimpleQueue()
    closed = threading.Event()

    def on_step(step: GenerationStepResult) -> bool:
        steps.put(step)
        return closed.is_set()

    def decode():
        try:
            translator.translate_batch([source], callback=on_step, **options)
            steps.put(_DONE)
        except BaseException as error:
            steps.put(error)

    worker = threading.Thread(target=decode, name="rnnsearch-generate-tokens", daemon=True)
    worker.start()
    try:
        while True:
            item = steps.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        closed.set()      # the engine's next callback returns True: the search ends there
        worker.join()
