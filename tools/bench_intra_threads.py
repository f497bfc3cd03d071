"""Batch-1 latency with intra_threads (issue 20, part 3): one sentence per call, decoded on
one thread and with its step's products split over N threads, greedy and beam 5.

    python tools/bench_intra_threads.py                       # nmt size, 1 vs 2 threads
    python tools/bench_intra_threads.py --compute-type int8 --threads 3
    python tools/bench_intra_threads.py --quick               # a smoke run, seconds

The model is `rnnsearch bench`'s random `nmt` size (32k vocabularies, embedding 512, 2-layer
bidirectional LSTM encoder of 512, 2-layer Luong LSTM decoder of 1024 with input feeding,
general attention) unless -m gives one. Every call forces the target length (min = max
decoding length), so both settings do the same work; the two translators alternate
within each repetition (rotated order), every shape is warmed up first, and the table gives
the median ms per sentence, wall and CPU (all threads of the process), the speed-up, how
many parts of a split product the worker threads ran on average (N - 1 when the workers
always kept up; less when the machine is busy and the caller ran their parts itself), and
whether every output (tokens, scores, attention) is bit-identical. Prints a Markdown table
and the command line.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

from rnnsearch import _engine
from rnnsearch.bench.sources import model_or_random, random_sources
from rnnsearch.bench.timing import rotated, timed
from rnnsearch.translator import Translator


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-m", "--model", default=None, help="model directory (default: random)")
    p.add_argument("--size", default="nmt", choices=["small", "medium", "nmt"],
                   help="size of the random model when no -m is given (default nmt)")
    p.add_argument("--compute-type", default="float32", choices=["float32", "int8"])
    p.add_argument("--threads", type=int, default=2, help="intra_threads against 1 (default 2)")
    p.add_argument("--sentences", type=int, default=4, help="sentences, one per call (default 4)")
    p.add_argument("--source-length", type=int, default=25, help="tokens per source (default 25)")
    p.add_argument("--target-length", type=int, default=25, help="tokens decoded (default 25)")
    p.add_argument("--repeat", type=int, default=5, help="repetitions (default 5)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: medium model, 2 sentences of 8 tokens, 2 repetitions")
    return p


def outcome(results) -> list:
    return [(r.hypotheses, r.scores, [a.tobytes() for a in r.attention]) for r in results]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.quick:
        if "--size" not in argv:
            args.size = "medium"
        args.sentences, args.source_length, args.target_length, args.repeat = 2, 8, 8, 2
    if min(args.threads - 1, args.sentences, args.source_length, args.target_length,
           args.repeat) < 1:
        raise SystemExit("--threads must be at least 2; the other counts at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        path, label = model_or_random(args.model, args.size, tmp)
        engines = {threads: Translator(path, compute_type=args.compute_type,
                                       intra_threads=threads)
                   for threads in (1, args.threads)}
        words = engines[1].source_vocab.tokens
        sentences = [[words[i] for i in s] for s in
                     random_sources(len(words), args.sentences, args.source_length)]
        rows = []
        for beam in (1, 5):
            options = dict(beam_size=beam, min_decoding_length=args.target_length,
                           max_decoding_length=args.target_length, return_scores=True,
                           return_attention=True)
            outputs = {}

            def run(threads):
                outputs[threads] = [outcome(engines[threads].translate_batch([s], **options))
                                    for s in sentences]

            for threads in engines:   # warm-up: every shape, and the pool's threads
                run(threads)
            wall = {threads: [] for threads in engines}
            cpu = {threads: [] for threads in engines}
            split_before, _, workers_before = _engine.intra_split()
            for repetition in range(args.repeat):
                for threads in rotated(list(engines), repetition):
                    w, c = timed(lambda: run(threads))
                    wall[threads].append(1000 * w / len(sentences))
                    cpu[threads].append(1000 * c / len(sentences))
            split, _, on_workers = _engine.intra_split()
            # products split, and the parts of them the workers (not the caller) ran
            share = (on_workers - workers_before) / max(1, split - split_before)
            identical = outputs[1] == outputs[args.threads]
            one, many = statistics.median(wall[1]), statistics.median(wall[args.threads])
            rows.append((f"batch 1, {'greedy' if beam == 1 else f'beam {beam}'}", one,
                         statistics.median(cpu[1]), many, statistics.median(cpu[args.threads]),
                         one / many, share, identical))
            print(f"  beam {beam}: {one:.1f} ms vs {many:.1f} ms", file=sys.stderr, flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    n = args.threads
    command = " ".join(["python tools/bench_intra_threads.py", *argv])
    print(f"# rnnsearch: batch-1 latency, intra_threads 1 vs {n}\n")
    print(f"`{command}`\n")
    print(f"model {label}, {args.compute_type}; {args.sentences} sentences of "
          f"{args.source_length} tokens, {args.target_length} target tokens forced; median of "
          f"{args.repeat}; ms per sentence; {os.cpu_count()} cores, load {load:.1f} at the "
          f"end\n")
    print(f"| case | 1 thread wall | 1 thread CPU | {n} threads wall | {n} threads CPU "
          f"| speed-up | worker parts per split product | identical |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for case, w1, c1, wn, cn, speedup, share, same in rows:
        print(f"| {case} | {w1:.1f} | {c1:.1f} | {wn:.1f} | {cn:.1f} | {speedup:.2f}x | "
              f"{share:.2f} of {n - 1} | {'yes' if same else 'NO'} |")
    return 0 if all(row[-1] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
