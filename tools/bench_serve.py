"""Throughput and latency of `rnnsearch serve` under many concurrent clients, against the
offline batched throughput of the same model and engine threads.

Offline: Translator.translate_batch over the workload in batches of --max-batch-size,
with intra_threads = workers x threads (the engine threads the server gets). Server: the
real `rnnsearch serve` process on a free port; --clients connections (HTTP/1.1 keep-alive,
a minimal asyncio client so that the load generator costs little CPU) each send one
sentence per request, back to back, until --requests are answered. Every answer is
checked against the offline translation. Offline and server runs alternate --repeat
times; medians are reported, as a Markdown table with the command line.

    python tools/bench_serve.py                          # default G2P model, single words
    python tools/bench_serve.py --size medium            # random 'medium' NMT-like model
    python tools/bench_serve.py --workers 2 --threads 1  # two engine batches at once
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from bench_common import add_model_arguments, bench_model, random_words

from rnnsearch import Translator


def workload(args, translator) -> tuple[list[dict], dict]:
    """One request body per sentence, and the decoding options they share."""
    rng = np.random.default_rng(0)
    options = {"beam_size": args.beam_size}
    if args.model is None and args.size is None:     # G2P: single words
        return [{"texts": [w], **options} for w in random_words(args.requests)], options
    # random model: random sentences of fixed source and target length (no EOS to wait for)
    options.update(min_decoding_length=args.target_length,
                   max_decoding_length=args.target_length)
    vocab = translator.source_vocab.tokens[4:]
    return [{"tokens": [[str(t) for t in rng.choice(vocab, size=args.source_length)]],
             **options} for _ in range(args.requests)], options


def offline_run(translator, bodies, options, batch) -> tuple[float, list]:
    key = "texts" if "texts" in bodies[0] else "tokens"
    inputs = [b[key][0] for b in bodies]
    started = time.perf_counter()
    outputs = []
    for i in range(0, len(inputs), batch):
        chunk = inputs[i:i + batch]
        if key == "texts":
            outputs += translator.translate(chunk, **options)
        else:
            outputs += [r.hypotheses[0] for r in translator.translate_batch(chunk, **options)]
    return len(inputs) / (time.perf_counter() - started), outputs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_connection(port, bodies, next_index, latencies, answers):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            i = next_index()
            if i is None:
                return
            payload = json.dumps(bodies[i]).encode()
            started = time.perf_counter()
            writer.write(b"POST /translate HTTP/1.1\r\nHost: bench\r\nContent-Type: "
                         b"application/json\r\nContent-Length: %d\r\n\r\n" % len(payload)
                         + payload)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"request {i}: {head[:40]!r} {body[:200]!r}")
            answers[i] = json.loads(body)["translations"][0]
    finally:
        writer.close()


async def load(port, bodies, clients) -> tuple[float, list[float], list]:
    latencies, answers, counter = [], [None] * len(bodies), iter(range(len(bodies)))
    started = time.perf_counter()
    await asyncio.gather(*(one_connection(port, bodies, lambda: next(counter, None),
                                          latencies, answers) for _ in range(clients)))
    return time.perf_counter() - started, latencies, answers


def metric_mean(port: int, name: str) -> float:
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
              if line.startswith(name + "_sum") or line.startswith(name + "_count")}
    return values[name + "_sum"] / max(1.0, values[name + "_count"])


def start_server(args, model_path, port):
    command = [sys.executable, "-m", "rnnsearch", "serve", "-m", model_path, "--port",
               str(port), "--workers", str(args.workers), "--threads", str(args.threads),
               "--max-batch-size", str(args.max_batch_size), "--max-latency-ms",
               str(args.max_latency_ms), "--log-level", "warning",
               "--max-decoding-length", "1024", "--max-beam-size", "64"]
    server = subprocess.Popen(command)
    import urllib.request
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the server did not start")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(p)
    p.add_argument("--clients", type=int, default=64, help="concurrent connections")
    p.add_argument("--requests", type=int, default=4000, help="single-sentence requests")
    p.add_argument("--beam-size", type=int, default=5)
    p.add_argument("--workers", type=int, default=1, help="server: engine batches at once")
    p.add_argument("--threads", type=int, default=1, help="server: intra threads per batch")
    p.add_argument("--max-batch-size", type=int, default=64)
    p.add_argument("--max-latency-ms", type=float, default=5.0)
    p.add_argument("--target-length", type=int, default=20, help="random models only")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        model_path, label = bench_model(args, tmp)
        engine_threads = args.workers * args.threads
        translator = Translator(model_path, intra_threads=engine_threads)
        model_path = translator.model_path
        bodies, options = workload(args, translator)
        offline_run(translator, bodies[:args.max_batch_size], options, args.max_batch_size)
        port = free_port()
        server = start_server(args, model_path, port)
        try:
            asyncio.run(load(port, bodies[:args.clients * 2], args.clients))   # warm up
            rates, served, p50s, p99s, cpus = [], [], [], [], []
            for _ in range(args.repeat):
                rate, expected = offline_run(translator, bodies, options, args.max_batch_size)
                rates.append(rate)
                cpu = cpu_seconds(server.pid)
                wall, latencies, answers = asyncio.run(load(port, bodies, args.clients))
                cpus.append((cpu_seconds(server.pid) - cpu) / wall)
                if answers != expected:
                    wrong = sum(a != b for a, b in zip(answers, expected))
                    raise SystemExit(f"{wrong} server answers differ from offline")
                served.append(len(bodies) / wall)
                p50s.append(1000 * np.percentile(latencies, 50))
                p99s.append(1000 * np.percentile(latencies, 99))
            mean_batch = metric_mean(port, "rnnsearch_batch_sentences")
        finally:
            server.terminate()
            server.wait(timeout=120)

    offline, online = statistics.median(rates), statistics.median(served)
    print(f"\n`{shlex.join(['python', 'tools/bench_serve.py', *(argv or sys.argv[1:])])}` "
          f"(median of {args.repeat}; {len(bodies)} single-sentence requests from "
          f"{args.clients} clients; answers checked against offline)\n")
    print("| model | beam | engine threads (workers x threads) | offline batched sent/s | "
          "server sent/s | server / offline | p50 ms | p99 ms | mean batch | server CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {label} | {args.beam_size} | {engine_threads} ({args.workers} x {args.threads}) "
          f"| {offline:.0f} | {online:.0f} | {online / offline:.0%} | "
          f"{statistics.median(p50s):.1f} | {statistics.median(p99s):.1f} | {mean_batch:.1f} | "
          f"{statistics.median(cpus):.2f} cores |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
