"""The server's dynamic batcher on its own, with the real Translator: what it merges,
what it keeps apart, what it drops, and that every sentence gets its offline result."""
import threading
import time

import pytest

from rnnsearch import Translator
from rnnsearch.serve.batcher import DynamicBatcher, Job, QueueFull
from sentences import random_sentences


@pytest.fixture(scope="module")
def translator(small_translator):
    return small_translator


def _sources(translator, n, seed=0):
    return random_sentences(translator, n, seed, longest=9)


class Batches(list):
    """Records (sentences, requests) of every engine batch."""

    def __call__(self, sentences, requests, seconds):
        self.append((sentences, requests))


def _hypotheses(results):
    return [r.hypotheses for r in results]


def test_sentences_of_many_requests_share_one_batch(translator):
    batches = Batches()
    batcher = DynamicBatcher(translator, max_batch_size=10, max_latency_ms=10_000,
                             on_batch=batches)
    sources = _sources(translator, 10)
    jobs = [batcher.submit(Job([s], {"beam_size": 3})) for s in sources]
    results = [job.future.result(timeout=60)[0] for job in jobs]
    batcher.close()
    assert batches == [(10, 10)]   # full at 10 sentences: no waiting for the window
    assert _hypotheses(results) == _hypotheses(translator.translate_batch(sources, beam_size=3))


def test_options_are_never_mixed_and_large_requests_are_split(translator):
    batches = Batches()
    seen = []

    class Recording(Translator):
        def translate_batch(self, source, **options):
            seen.append((len(source), options["beam_size"]))
            return super().translate_batch(source, **options)

    recording = Recording(translator.model_path)
    batcher = DynamicBatcher(recording, max_batch_size=8, max_latency_ms=50, workers=2,
                             on_batch=batches)
    big = _sources(translator, 25, seed=1)
    small = _sources(translator, 5, seed=2)
    jobs = [batcher.submit(Job(big, {"beam_size": 2})),
            batcher.submit(Job(small, {"beam_size": 1}))]
    got = [job.future.result(timeout=60) for job in jobs]
    batcher.close()
    assert _hypotheses(got[0]) == _hypotheses(translator.translate_batch(big, beam_size=2))
    assert _hypotheses(got[1]) == _hypotheses(translator.translate_batch(small, beam_size=1))
    assert all(size <= 8 for size, _ in seen)
    assert sum(size for size, beam in seen if beam == 2) == 25
    assert sum(size for size, beam in seen if beam == 1) == 5


def test_a_lone_sentence_waits_no_longer_than_the_latency_window(translator):
    batcher = DynamicBatcher(translator, max_batch_size=64, max_latency_ms=30)
    started = time.perf_counter()
    batcher.submit(Job([["s1"]], {"beam_size": 1})).future.result(timeout=60)
    took = time.perf_counter() - started
    batcher.close()
    assert 0.03 <= took < 5


def test_cancelled_requests_are_dropped_before_decoding(translator):
    batches = Batches()
    batcher = DynamicBatcher(translator, max_batch_size=64, max_latency_ms=300,
                             on_batch=batches)
    dropped = batcher.submit(Job(_sources(translator, 3), {"beam_size": 1}))
    kept = batcher.submit(Job(_sources(translator, 2, seed=4), {"beam_size": 1}))
    dropped.cancel()
    assert len(kept.future.result(timeout=60)) == 2
    batcher.close()
    assert batches == [(2, 1)]
    assert not dropped.future.done()


def test_a_cancelled_stream_stops_decoding(translator):
    source = _sources(translator, 1, seed=6)[0]
    full = translator.translate_batch([source], beam_size=1, max_decoding_length=200)[0]
    assert len(full.hypotheses[0]) > 3
    tokens = []

    def on_token(sentence, step):
        tokens.append(step.token)
        if len(tokens) == 2:
            job.cancel()

    batcher = DynamicBatcher(translator, max_latency_ms=0)
    job = Job([source], {"beam_size": 1, "max_decoding_length": 200}, on_token)
    batcher.submit(job)
    result = job.future.result(timeout=60)[0]
    batcher.close()
    assert tokens == full.hypotheses[0][:2]
    assert result.hypotheses[0] == full.hypotheses[0][:2]


def test_queue_limit_and_closing(translator):
    batcher = DynamicBatcher(translator, max_latency_ms=10_000, max_queue=5)
    first = batcher.submit(Job(_sources(translator, 4), {"beam_size": 1}))
    with pytest.raises(QueueFull, match="5"):
        batcher.submit(Job(_sources(translator, 2), {"beam_size": 1}))
    batcher.close()      # decodes what is queued without waiting out the window
    assert len(first.future.result(timeout=0)) == 4
    with pytest.raises(RuntimeError, match="shutting down"):
        batcher.submit(Job([["s1"]], {"beam_size": 1}))


def test_one_failing_request_does_not_fail_those_merged_with_it(translator):
    class Poisoned(Translator):
        def translate_batch(self, source, **options):
            if any("s5" in sentence for sentence in source):
                raise MemoryError("poisoned sentence")
            return super().translate_batch(source, **options)

    poisoned = Poisoned(translator.model_path)
    batcher = DynamicBatcher(poisoned, max_batch_size=8, max_latency_ms=10_000)
    good = batcher.submit(Job([["s1", "s2"], ["s3"]], {"beam_size": 2}))
    bad = batcher.submit(Job([["s4", "s5"]], {"beam_size": 2}))
    more = batcher.submit(Job([["s6"]] * 5, {"beam_size": 2}))   # fills the batch of 8
    assert _hypotheses(good.future.result(timeout=60)) == _hypotheses(
        translator.translate_batch([["s1", "s2"], ["s3"]], beam_size=2))
    assert len(more.future.result(timeout=60)) == 5
    with pytest.raises(MemoryError, match="poisoned"):
        bad.future.result(timeout=60)
    batcher.close()


def test_submitting_from_many_threads(translator):
    sources = _sources(translator, 60, seed=9)
    batcher = DynamicBatcher(translator, max_batch_size=16, max_latency_ms=5, workers=2)
    results = [None] * len(sources)

    def client(i):
        results[i] = batcher.submit(Job([sources[i]], {"beam_size": 2})).future.result(60)[0]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(sources))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    assert _hypotheses(results) == _hypotheses(translator.translate_batch(sources, beam_size=2))
