"""`rnnsearch serve`: an HTTP server (Starlette on uvicorn, `pip install "rnnsearch[serve]"`)
that merges the sentences of concurrent requests into engine batches.

config.py   the server's options and limits (the command's arguments)
batcher.py  dynamic batching: sentences queued, merged by decoding options, decoded by
            worker threads (no web framework: testable alone)
schema.py   request JSON -> validated sentences and options; results -> response JSON
metrics.py  Prometheus counters and histograms
app.py      the Starlette application: routes, errors, streaming, lifespan
server.py   uvicorn, signals and graceful shutdown

Only server.py and app.py import the web stack, and nothing here is imported by
`import rnnsearch`.
"""
