"""Prometheus metrics of the server (prometheus_client, one registry per server): requests
by endpoint and status, request latency, engine batch sizes and times, the queue."""
from __future__ import annotations

import time
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST

ENDPOINTS = ("/translate", "/translate/stream", "/health", "/metrics")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, waiting: Callable[[], int], busy: Callable[[], int]):
        self.registry = r = CollectorRegistry()
        self.requests = Counter("rnnsearch_requests", "HTTP requests answered",
                                ["endpoint", "status"], registry=r)
        self.latency = Histogram("rnnsearch_request_seconds",
                                 "time from a request's arrival to the end of its answer",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("rnnsearch_requests_in_flight", "requests being answered",
                               registry=r)
        self.batch_sentences = Histogram("rnnsearch_batch_sentences",
                                         "sentences in each engine batch",
                                         buckets=BATCH_BUCKETS, registry=r)
        self.batch_requests = Histogram("rnnsearch_batch_requests",
                                        "requests whose sentences share each engine batch",
                                        buckets=BATCH_BUCKETS, registry=r)
        self.batch_seconds = Histogram("rnnsearch_batch_seconds",
                                       "time the engine took for each batch",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.sentences = Counter("rnnsearch_sentences", "sentences translated", registry=r)
        self.streamed_tokens = Counter("rnnsearch_streamed_tokens",
                                       "tokens sent by /translate/stream", registry=r)
        Gauge("rnnsearch_queue_sentences", "sentences waiting for an engine batch",
              registry=r).set_function(waiting)
        Gauge("rnnsearch_busy_workers", "workers decoding a batch now",
              registry=r).set_function(busy)

    def on_batch(self, sentences: int, requests: int, seconds: float) -> None:
        """The batcher's report after every engine batch (in a worker thread)."""
        self.batch_sentences.observe(sentences)
        self.batch_requests.observe(requests)
        self.batch_seconds.observe(seconds)
        self.sentences.inc(sentences)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware: counts each HTTP request by endpoint and status and times it
    until the last byte of its answer (streams included)."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        endpoint = scope["path"] if scope["path"] in ENDPOINTS else "other"
        status = [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        started = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.requests.labels(endpoint, str(status[0])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
