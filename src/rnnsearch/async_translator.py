"""AsyncTranslator: the Translator for asyncio programs. Every call runs in a worker thread
(the engine releases the GIL while it decodes), so awaiting one never blocks the event
loop, and `workers` calls decode at the same time."""
from __future__ import annotations

import asyncio
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import AsyncIterator

from .streaming import GenerationStepResult, greedy_options

_DONE = object()


class AsyncTranslator:
    """async translate_batch / translate / generate_tokens over one Translator.

    translator: a Translator, or a model path (None: the default model) plus the keyword
    arguments of Translator. workers: how many calls decode at once (each with the
    translator's intra_threads). Use `async with AsyncTranslator(...) as tr:` or call
    close() to stop the worker threads.
    """

    def __init__(self, translator=None, *, workers: int = 1, **translator_options):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        if translator is None or isinstance(translator, str):
            from .translator import Translator
            translator = Translator(translator, **translator_options)
        elif translator_options:
            raise TypeError("Translator options go with a model path, not a Translator")
        self.translator = translator
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers,
                                        thread_name_prefix="rnnsearch-async")

    async def _run(self, function, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool,
                                          functools.partial(function, *args, **kwargs))

    async def translate_batch(self, source: list[list[str]], **options):
        """Translator.translate_batch, awaited."""
        return await self._run(self.translator.translate_batch, source, **options)

    async def translate(self, texts: list[str], **options) -> list[str]:
        """Translator.translate, awaited."""
        return await self._run(self.translator.translate, texts, **options)

    async def generate_tokens(self, source: list[str],
                              **options) -> AsyncIterator[GenerationStepResult]:
        """Translator.generate_tokens as an async iterator: each token as it is decoded.
        Leaving the loop (break, aclose(), cancellation) stops the decoding at the next
        step."""
        options = greedy_options(options)
        loop = asyncio.get_running_loop()
        steps: asyncio.Queue = asyncio.Queue()
        closed = threading.Event()

        def on_step(step: GenerationStepResult) -> bool:   # in the worker thread
            loop.call_soon_threadsafe(steps.put_nowait, step)
            return closed.is_set()   # True ends the search at this step

        worker = loop.run_in_executor(self._pool, functools.partial(
            self.translator.translate_batch, [source], callback=on_step, **options))
        # queued after every step: the thread hands its steps over before it finishes
        worker.add_done_callback(lambda _: steps.put_nowait(_DONE))
        try:
            while True:
                item = await steps.get()
                if item is _DONE:
                    worker.result()    # raises the translation's error, if any
                    return
                yield item
        finally:
            closed.set()
            if not worker.done():
                await asyncio.shield(worker)

    def close(self) -> None:
        """Wait for running calls and stop the worker threads."""
        self._pool.shutdown(wait=True)

    async def __aenter__(self) -> "AsyncTranslator":
        return self

    async def __aexit__(self, *exc) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)
