"""AsyncTranslator against the Translator it wraps: same results, concurrent calls, an
event loop that keeps running while the engine decodes, and early stopping."""
import asyncio
import threading
import time

import pytest

from rnnsearch import Translator
from rnnsearch.async_translator import AsyncTranslator
from sentences import random_sentences


@pytest.fixture(scope="module")
def translator(small_translator):
    return small_translator


def _sources(translator, n, seed=0):
    return random_sentences(translator, n, seed)


def test_results_equal_the_translator(translator):
    sources = _sources(translator, 40)

    async def main():
        async with AsyncTranslator(translator, workers=2) as atr:
            whole = await atr.translate_batch(sources, beam_size=4, return_scores=True)
            parts = await asyncio.gather(*(atr.translate_batch([s], beam_size=4,
                                                               return_scores=True)
                                           for s in sources))
            steps = [s async for s in atr.generate_tokens(sources[0], max_decoding_length=30)]
            return whole, [p[0] for p in parts], steps

    whole, parts, steps = asyncio.run(main())
    expected = translator.translate_batch(sources, beam_size=4, return_scores=True)
    for got in (whole, parts):
        assert [r.hypotheses for r in got] == [r.hypotheses for r in expected]
        assert [r.scores for r in got] == [r.scores for r in expected]
    assert [s.token for s in steps] == \
        [s.token for s in translator.generate_tokens(sources[0], max_decoding_length=30)]


def test_translate_with_the_default_model():
    async def main():
        async with AsyncTranslator() as atr:
            return await atr.translate(["attention", "is all"], beam_size=5)

    assert asyncio.run(main()) == Translator().translate(["attention", "is all"], beam_size=5)


def test_the_event_loop_keeps_running_while_the_engine_decodes(translator):
    sources = _sources(translator, 400, seed=1)

    async def main():
        gaps, done = [], asyncio.Event()

        async def tick():
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.002)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        async with AsyncTranslator(translator) as atr:
            started = time.perf_counter()
            await atr.translate_batch(sources, beam_size=8, max_decoding_length=60)
            took = time.perf_counter() - started
        done.set()
        await ticker
        return took, gaps

    took, gaps = asyncio.run(main())
    assert took > 0.1, "the test needs a translation that takes a while"
    # a blocked loop would show one gap as long as the whole translation; the loop kept
    # ticking for most of it (counted in short gaps, so that the whole machine stalling
    # for a moment, which delays one tick, does not fail the test)
    ticking = sum(g for g in gaps if g < 0.05)
    assert len(gaps) > 10 and ticking > took / 2, (took, ticking, max(gaps))


def test_leaving_generate_tokens_stops_the_decoding(translator):
    source = _sources(translator, 1, seed=2)[0]
    full = translator.translate_batch([source], beam_size=1, max_decoding_length=200)[0]
    assert len(full.hypotheses[0]) > 4

    async def main():
        async with AsyncTranslator(translator) as atr:
            stream = atr.generate_tokens(source, max_decoding_length=200)
            tokens = []
            async for step in stream:
                tokens.append(step.token)
                if len(tokens) == 2:
                    break
            await stream.aclose()
            return tokens

    threads = threading.active_count()
    assert asyncio.run(main()) == full.hypotheses[0][:2]
    assert threading.active_count() == threads


def test_errors_reach_the_awaiting_caller(translator):
    async def main():
        async with AsyncTranslator(translator) as atr:
            with pytest.raises(ValueError, match="beam_size"):
                await atr.translate_batch([["s1"]], beam_size=0)
            with pytest.raises(ValueError, match="beam_size must be 1"):
                async for _ in atr.generate_tokens(["s1"], beam_size=3):
                    pass
            with pytest.raises(ValueError, match="longer than the model allows"):
                async for _ in atr.generate_tokens(["s1"] * 10_000):
                    pass

    asyncio.run(main())
    with pytest.raises(ValueError, match="workers"):
        AsyncTranslator(translator, workers=0)
