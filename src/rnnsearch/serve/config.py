"""The server's settings: how it batches, and the limits that keep any one request from
taking it over. They are the arguments of `rnnsearch serve`."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class ServerConfig:
    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    threads: int = 1                 # intra_threads of each engine batch
    compute_type: str = "float32"
    workers: int = 1                 # engine batches decoded at once (threads, one model)
    max_batch_size: int = 64         # sentences per engine batch
    max_latency_ms: float = 5.0      # how long a free worker waits for a batch to fill
    max_queue: int = 4096            # sentences waiting; beyond it requests get 503
    max_request_bytes: int = 1 << 20
    max_sentences: int = 256         # engine sentences per request (words, for per-word models)
    max_beam_size: int = 16
    max_decoding_length: int = 512
    timeout: float = 60.0            # seconds a request may take, queueing included
    max_connections: int = 1024      # beyond it uvicorn answers 503
    graceful_timeout: float = 90.0   # seconds shutdown waits for requests in flight
    log_level: str = "info"
    access_log: bool = False         # a log line per request costs throughput

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ServerConfig":
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})

    def check(self) -> None:
        """ValueError naming the first setting out of range."""
        positive = ("threads", "workers", "max_batch_size", "max_queue", "max_request_bytes",
                    "max_sentences", "max_beam_size", "max_decoding_length", "max_connections")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, "
                                 f"got {value!r}")
        for name in ("max_latency_ms", "timeout", "graceful_timeout"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0")
        if not 0 <= self.port < 65536:
            raise ValueError(f"--port must be in [0, 65535], got {self.port}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = ServerConfig()
    p.add_argument("-m", "--model", default=None,
                   help="model directory (default: the embedded English G2P model)")
    p.add_argument("--host", default=d.host, help=f"address to listen on (default {d.host})")
    p.add_argument("--port", type=int, default=d.port, help=f"port (default {d.port})")
    p.add_argument("--workers", type=int, default=d.workers,
                   help="engine batches decoded at once, by threads sharing one model "
                        f"(default {d.workers}; e.g. the number of cores / --threads)")
    p.add_argument("--threads", type=int, default=d.threads,
                   help=f"intra-op threads of each batch (default {d.threads})")
    p.add_argument("--compute-type", default=d.compute_type, choices=["float32", "int8"])
    p.add_argument("--max-batch-size", type=int, default=d.max_batch_size,
                   help=f"most sentences in one engine batch (default {d.max_batch_size})")
    p.add_argument("--max-latency-ms", type=float, default=d.max_latency_ms,
                   help="how long an idle worker waits for more sentences to join a "
                        f"batch (default {d.max_latency_ms})")
    p.add_argument("--max-queue", type=int, default=d.max_queue,
                   help=f"sentences waiting before requests get 503 (default {d.max_queue})")
    p.add_argument("--max-request-bytes", type=int, default=d.max_request_bytes,
                   help=f"largest request body (default {d.max_request_bytes})")
    p.add_argument("--max-sentences", type=int, default=d.max_sentences,
                   help="most sentences in one request, counting each word for per-word "
                        f"models (default {d.max_sentences})")
    p.add_argument("--max-beam-size", type=int, default=d.max_beam_size,
                   help=f"largest beam_size a request may ask for (default {d.max_beam_size})")
    p.add_argument("--max-decoding-length", type=int, default=d.max_decoding_length,
                   help="largest max_decoding_length a request may ask for "
                        f"(default {d.max_decoding_length})")
    p.add_argument("--timeout", type=float, default=d.timeout,
                   help=f"seconds a request may take before 504 (default {d.timeout:g})")
    p.add_argument("--max-connections", type=int, default=d.max_connections,
                   help=f"open connections before 503 (default {d.max_connections})")
    p.add_argument("--graceful-timeout", type=float, default=d.graceful_timeout,
                   help="seconds shutdown (SIGTERM, Ctrl-C) waits for requests in flight "
                        f"(default {d.graceful_timeout:g})")
    p.add_argument("--log-level", default=d.log_level,
                   choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--access-log", action="store_true", help="log every request")
