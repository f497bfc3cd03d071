"""The Starlette application of `rnnsearch serve`.

POST /translate         JSON in, JSON out (schema.py); sentences go through the batcher
POST /translate/stream  the same request, greedy, answered as server-sent events: one
                        `token` event per decoded token, then `done` with the response
                        /translate would give (or `error`)
GET  /health            {"status": "ok", ...}
GET  /metrics           Prometheus text format

Every refusal is a JSON object {"error": message} with a 4xx status (5xx for the server's
own failures). Parsing and checking run on the event loop and are bounded by the
request limits; decoding runs in the batcher's threads, so the loop stays free.
"""
from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .batcher import DynamicBatcher, Job, QueueFull
from .config import ServerConfig
from .metrics import Metrics, MetricsMiddleware
from .schema import RequestError, TranslateRequest, parse_request, response, step_event


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestError(400, f"invalid Content-Length {declared!r}")
        if int(declared) > limit:
            raise RequestError(413, f"request body of {declared} bytes is above the "
                                    f"server's limit of {limit} (--max-request-bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"request body is above the server's limit of {limit} "
                                    "bytes (--max-request-bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def server_event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, allow_nan=False)}\n\n"


class TranslationService:
    """What the routes share: the translator, its batcher, the metrics and the limits."""

    def __init__(self, translator, config: ServerConfig):
        self.translator = translator
        self.config = config
        self.metrics = Metrics(waiting=lambda: self.batcher.waiting,
                               busy=lambda: self.batcher.busy)
        self.batcher = DynamicBatcher(translator, config.max_batch_size, config.max_latency_ms,
                                      config.workers, config.max_queue,
                                      on_batch=self.metrics.on_batch)

    async def _request(self, request: Request, streaming: bool) -> TranslateRequest:
        try:   # a client that sends its body slowly must not hold a connection forever
            body = await asyncio.wait_for(read_body(request, self.config.max_request_bytes),
                                          self.config.timeout)
        except asyncio.TimeoutError:
            raise RequestError(408, f"request body not received within "
                                    f"{self.config.timeout:g} s (--timeout)") from None
        return parse_request(body, self.translator, self.config, streaming)

    def _submit(self, job: Job) -> Job:
        try:
            return self.batcher.submit(job)
        except QueueFull as error:
            raise RequestError(503, f"server busy: {error}; retry later") from None
        except RuntimeError as error:
            raise RequestError(503, str(error)) from None

    async def translate(self, request: Request) -> Response:
        parsed = await self._request(request, streaming=False)
        job = self._submit(Job(parsed.sentences, parsed.options, prefixes=parsed.prefixes))
        try:
            results = await asyncio.wait_for(asyncio.wrap_future(job.future),
                                             self.config.timeout)
        except asyncio.TimeoutError:
            job.cancel()
            raise RequestError(504, f"not translated within {self.config.timeout:g} s "
                                    "(--timeout)") from None
        return JSONResponse(response(parsed, self.translator, results))

    async def stream(self, request: Request) -> Response:
        parsed = await self._request(request, streaming=True)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        positions = parsed.positions()

        def on_token(sentence, step):    # a worker thread, as the engine decodes
            loop.call_soon_threadsafe(events.put_nowait, (sentence, step))

        job = self._submit(Job(parsed.sentences, parsed.options, on_token, parsed.prefixes))
        # after the job's last token: the worker hands its tokens over before finishing
        job.future.add_done_callback(
            lambda _: loop.call_soon_threadsafe(events.put_nowait, None))
        return StreamingResponse(self._events(parsed, job, events, positions),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    async def _events(self, parsed, job, events, positions):
        deadline = asyncio.get_running_loop().time() + self.config.timeout
        try:
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                try:
                    item = await asyncio.wait_for(events.get(), max(remaining, 0))
                except asyncio.TimeoutError:
                    yield server_event("error", {"error": "not translated within "
                                                 f"{self.config.timeout:g} s (--timeout)"})
                    return
                if item is None:
                    break
                self.metrics.streamed_tokens.inc()
                yield server_event("token", step_event(parsed, positions, *item))
            try:
                results = job.future.result()
            except Exception as error:
                yield server_event("error", {"error": f"translation failed: {error}"})
                return
            yield server_event("done", response(parsed, self.translator, results))
        finally:
            job.cancel()   # finished, timed out or the client left: stop its decoding

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": self.translator.model_path,
                             "workers": self.config.workers, "busy": self.batcher.busy,
                             "queued_sentences": self.batcher.waiting})

    async def metrics_text(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=self.metrics.content_type)


async def request_error(request: Request, error: RequestError) -> Response:
    return JSONResponse({"error": error.message}, status_code=error.status)


async def http_error(request: Request, error: HTTPException) -> Response:
    return JSONResponse({"error": error.detail}, status_code=error.status_code,
                        headers=error.headers)


async def server_error(request: Request, error: Exception) -> Response:
    return JSONResponse({"error": f"internal error: {type(error).__name__}: {error}"},
                        status_code=500)


def create_app(translator, config: ServerConfig) -> Starlette:
    """The application around a loaded Translator; its batcher's workers start now and
    stop, after finishing every queued sentence, when the application shuts down."""
    service = TranslationService(translator, config)

    @asynccontextmanager
    async def lifespan(app):
        yield
        # uvicorn has already waited for the requests in flight
        await asyncio.get_running_loop().run_in_executor(
            None, service.batcher.close, config.graceful_timeout)

    app = Starlette(
        routes=[Route("/translate", service.translate, methods=["POST"]),
                Route("/translate/stream", service.stream, methods=["POST"]),
                Route("/health", service.health, methods=["GET"]),
                Route("/metrics", service.metrics_text, methods=["GET"])],
        middleware=[Middleware(MetricsMiddleware, metrics=service.metrics)],
        exception_handlers={RequestError: request_error, HTTPException: http_error,
                            Exception: server_error},
        lifespan=lifespan)
    app.state.service = service
    return app
