"""`rnnsearch serve`: load the model, build the application, run it on uvicorn.

uvicorn handles SIGINT and SIGTERM gracefully: it stops accepting connections, lets every
request in flight finish (up to --graceful-timeout), then runs the application's shutdown,
which lets the batcher finish what is queued."""
from __future__ import annotations

import signal
import sys

from .config import ServerConfig

EXTRA = 'pip install "rnnsearch[serve]"'


def missing_packages() -> list[str]:
    import importlib.util
    return [name for name in ("starlette", "uvicorn", "prometheus_client")
            if importlib.util.find_spec(name) is None]


def run(args) -> int:
    config = ServerConfig.from_args(args)
    config.check()
    missing = missing_packages()
    if missing:
        print(f"rnnsearch serve needs {', '.join(missing)}: {EXTRA}", file=sys.stderr)
        return 1
    import uvicorn

    from ..translator import Translator
    from .app import create_app

    translator = Translator(config.model, intra_threads=config.threads,
                            compute_type=config.compute_type)
    app = create_app(translator, config)
    # uvicorn shuts down gracefully on SIGTERM, then raises it again for the handler it
    # found: make that an orderly exit (status 0), as the shutdown was
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(app, host=config.host, port=config.port, log_level=config.log_level,
                access_log=config.access_log, limit_concurrency=config.max_connections,
                timeout_graceful_shutdown=config.graceful_timeout, server_header=False)
    return 0
