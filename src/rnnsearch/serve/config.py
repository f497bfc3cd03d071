"""The server's settings: how it batches, and the limits that keep any one request from
taking it over. They are the arguments of `rnnsearch serve`."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

from ..cli_options import add_compute_type


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


# settings that are a number with a help text: (name, help); the type and default come
# from ServerConfig
NUMBERS = [
    ("workers", "engine batches decoded at once, by threads sharing one model (e.g. the "
                "number of cores / --threads)"),
    ("threads", "intra-op threads of each batch"),
    ("max_batch_size", "most sentences in one engine batch"),
    ("max_latency_ms", "how long an idle worker waits for more sentences to join a batch"),
    ("max_queue", "sentences waiting before requests get 503"),
    ("max_request_bytes", "largest request body"),
    ("max_sentences", "most sentences in one request, counting each word for per-word models"),
    ("max_beam_size", "largest beam_size a request may ask for"),
    ("max_decoding_length", "largest max_decoding_length a request may ask for"),
    ("timeout", "seconds a request may take before 504"),
    ("max_connections", "open connections before 503"),
    ("graceful_timeout", "seconds shutdown (SIGTERM, Ctrl-C) waits for requests in flight"),
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = ServerConfig()
    p.add_argument("-m", "--model", default=None,
                   help="model directory (default: the embedded English G2P model)")
    p.add_argument("--host", default=d.host, help=f"address to listen on (default {d.host})")
    p.add_argument("--port", type=int, default=d.port, help=f"port (default {d.port})")
    add_compute_type(p, d.compute_type)
    for name, text in NUMBERS:
        default = getattr(d, name)
        shown = f"{default:g}" if isinstance(default, float) else default
        p.add_argument("--" + name.replace("_", "-"), type=type(default), default=default,
                       metavar="N", help=f"{text} (default {shown})")
    p.add_argument("--log-level", default=d.log_level,
                   choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--access-log", action="store_true", help="log every request")
