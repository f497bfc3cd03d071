"""Dynamic batching: the sentences of concurrent requests are queued and merged into
engine batches by worker threads.

A free worker takes the sentences that share the oldest waiting sentence's decoding
options, up to max_batch_size of them; if fewer are waiting it waits for more, but never
longer than max_latency after that oldest sentence arrived. While every worker is busy,
arriving sentences pile up, so batches grow with the load by themselves. Each worker
calls Translator.translate_batch, which releases the GIL, so `workers` batches decode in
parallel on one copy of the model. A batch gives each sentence exactly the result it
would get alone (the engine's guarantee), so merging changes no answer.

Plain threads and concurrent.futures: no event loop or web framework here.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Callable


class QueueFull(Exception):
    """More sentences are waiting than the batcher accepts."""


def options_key(options: dict) -> tuple:
    """Sentences are batched together only when their decoding options are equal."""
    return tuple(sorted((name, _frozen(value)) for name, value in options.items()))


def _frozen(value):
    """A hashable stand-in for an option's value (lists, and dicts: a phrase table)."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):
        return tuple(sorted(value.items()))
    return value


class Job:
    """One request's sentences with one set of decoding options. `future` gets the list of
    TranslationResults (in sentence order) when all are decoded, or the first error.
    on_token (greedy only) is called in a worker thread as on_token(sentence index, step)
    for each token as it is decoded. prefixes: per sentence, its target prefix or None
    (a sentence's own, so sentences with and without one share batches)."""

    def __init__(self, sentences: list[list[str]], options: dict,
                 on_token: Callable | None = None, prefixes: list | None = None):
        self.sentences = sentences
        self.options = options
        self.on_token = on_token
        self.prefixes = prefixes
        self.key = options_key(options) + (on_token is not None,)
        self.results: list = [None] * len(sentences)
        self.future: Future = Future()
        self.future.set_running_or_notify_cancel()   # only the batcher settles it
        self.cancelled = False
        self._remaining = len(sentences)
        self._lock = threading.Lock()
        if not sentences:
            self.future.set_result([])

    def cancel(self) -> None:
        """Drop the sentences still waiting; a streaming job also stops decoding."""
        self.cancelled = True

    def deliver(self, index: int, result) -> None:
        with self._lock:
            self.results[index] = result
            self._remaining -= 1
            done = self._remaining == 0
        if done and not self.future.done():
            self.future.set_result(self.results)

    def fail(self, error: BaseException) -> None:
        with self._lock:
            if self.future.done():
                return
            self.future.set_exception(error)


class _Waiting:
    __slots__ = ("job", "index", "since")

    def __init__(self, job: Job, index: int, since: float):
        self.job, self.index, self.since = job, index, since


class DynamicBatcher:
    """Queue of sentences and the worker threads that decode them (see the module)."""

    def __init__(self, translator, max_batch_size: int = 64, max_latency_ms: float = 5.0,
                 workers: int = 1, max_queue: int = 4096,
                 on_batch: Callable[[int, int, float], None] | None = None):
        self.translator = translator
        self.max_batch_size = max_batch_size
        self.max_latency = max_latency_ms / 1000.0
        self.max_queue = max_queue
        self.on_batch = on_batch     # (sentences, requests, seconds) after each engine batch
        self._groups: dict[tuple, deque[_Waiting]] = {}
        self._waiting = 0
        self._busy = 0
        self._closing = False
        self._ready = threading.Condition()
        self._workers = [threading.Thread(target=self._work, name=f"rnnsearch-batch-{i}",
                                          daemon=True) for i in range(workers)]
        for worker in self._workers:
            worker.start()

    @property
    def waiting(self) -> int:
        """Sentences queued, not yet in an engine batch."""
        return self._waiting

    @property
    def busy(self) -> int:
        """Workers decoding a batch now."""
        return self._busy

    def submit(self, job: Job) -> Job:
        """Queue the job's sentences (thread-safe, never blocks on decoding); QueueFull if
        the queue cannot take them all, RuntimeError once the batcher is closing."""
        if not job.sentences:
            return job
        now = time.monotonic()
        with self._ready:
            if self._closing:
                raise RuntimeError("the server is shutting down")
            if self._waiting + len(job.sentences) > self.max_queue:
                raise QueueFull(f"{self._waiting} sentences are waiting; the queue holds "
                                f"{self.max_queue}")
            group = self._groups.setdefault(job.key, deque())
            group.extend(_Waiting(job, i, now) for i in range(len(job.sentences)))
            self._waiting += len(job.sentences)
            self._ready.notify()
        return job

    def close(self, timeout: float | None = None) -> None:
        """Decode what is queued, then stop the workers (waits up to `timeout` seconds)."""
        with self._ready:
            self._closing = True
            self._ready.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in self._workers:
            worker.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    # ---------------------------------------------------------------- worker threads

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._decode(batch)
            except Exception as error:   # never lose the worker: fail the batch's requests
                for item in batch:
                    item.job.fail(error)
            finally:
                with self._ready:
                    self._busy -= 1

    def _next_batch(self) -> list[_Waiting] | None:
        with self._ready:
            while True:
                if not self._groups:
                    if self._closing:
                        return None
                    self._ready.wait()
                    continue
                key = min(self._groups, key=lambda k: self._groups[k][0].since)
                group = self._groups[key]
                wait = group[0].since + self.max_latency - time.monotonic()
                if len(group) < self.max_batch_size and wait > 0 and not self._closing:
                    self._ready.wait(wait)   # a submit wakes us to look again
                    continue
                taken = [group.popleft() for _ in range(min(len(group), self.max_batch_size))]
                if not group:
                    del self._groups[key]
                self._waiting -= len(taken)
                if self._groups:
                    self._ready.notify()     # more is waiting: another worker may start
                taken = [item for item in taken if not item.job.cancelled]
                if taken:
                    self._busy += 1
                    return taken

    def _decode(self, batch: list[_Waiting]) -> None:
        options = batch[0].job.options
        callback = self._token_router(batch) if batch[0].job.on_token else None
        prefixes = [item.job.prefixes[item.index] if item.job.prefixes else None
                    for item in batch]
        started = time.perf_counter()
        try:
            results = self.translator.translate_batch(
                [item.job.sentences[item.index] for item in batch], callback=callback,
                target_prefix=prefixes if any(p is not None for p in prefixes) else None,
                **options)
        except Exception as error:
            jobs = list({id(item.job): item.job for item in batch}.values())
            if len(jobs) == 1:
                jobs[0].fail(error)
            else:   # one request's failure must not fail the others merged with it
                for job in jobs:
                    self._decode([item for item in batch if item.job is job])
            return
        if self.on_batch is not None:
            self.on_batch(len(batch), len({id(item.job) for item in batch}),
                          time.perf_counter() - started)
        for item, result in zip(batch, results):
            item.job.deliver(item.index, result)

    @staticmethod
    def _token_router(batch: list[_Waiting]):
        def route(step) -> bool:
            item = batch[step.batch_id]
            item.job.on_token(item.index, step)
            return item.job.cancelled     # True ends this sentence's decoding
        return route
