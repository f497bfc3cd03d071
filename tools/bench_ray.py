"""Scaling of rnnsearch.distributed.translate_dataset on Ray Data: one actor against N
actors on a local Ray instance (num_cpus = N), over a corpus of --sentences single words
for the default G2P model (or sentences of a random model), against one Translator in
this process. Each run is timed from the dataset's creation to its last row, actor start
and model load included; runs alternate --repeat times and medians are reported, with
the output checked against the Translator's, as a Markdown table with the command line.

    pip install "rnnsearch[ray]"
    python tools/bench_ray.py                   # 20,000 words, 1 vs 2 actors
"""
from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time

import numpy as np
from bench_common import add_model_arguments, bench_model, random_words

from rnnsearch import Translator


def corpus(args, translator) -> list[str]:
    if args.size is None:
        return random_words(args.sentences)
    rng = np.random.default_rng(0)
    vocab = translator.source_vocab.tokens[4:]
    return [" ".join(rng.choice(vocab, size=args.source_length)) for _ in range(args.sentences)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(p)
    p.add_argument("--sentences", type=int, default=20_000)
    p.add_argument("--actors", type=int, default=2, help="the pool compared with one actor")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--task-batches", type=int, default=16,
                   help="Translator calls per Ray task (translate_dataset's task_batches)")
    p.add_argument("--beam-size", type=int, default=5)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args(argv)

    import ray
    import ray.data

    from rnnsearch.distributed import translate_dataset

    with tempfile.TemporaryDirectory() as tmp:
        model_path, label = bench_model(args, tmp)
        translator = Translator(model_path)
        lines = corpus(args, translator)
        options = {"beam_size": args.beam_size}
        if args.size is not None:   # random weights: a fixed target length
            options.update(min_decoding_length=args.source_length,
                           max_decoding_length=args.source_length)

        ray.init(num_cpus=args.actors, include_dashboard=False, log_to_driver=False,
                 logging_level="warning")
        ray.data.DataContext.get_current().enable_progress_bars = False

        def on_ray(actors: int) -> float:
            started = time.perf_counter()
            ds = ray.data.from_items([{"text": line} for line in lines])
            rows = translate_dataset(ds, translator.model_path, actors=actors,
                                     batch_size=args.batch_size,
                                     task_batches=args.task_batches, **options).take_all()
            took = time.perf_counter() - started
            if [row["translation"] for row in rows] != expected:
                raise SystemExit(f"the {actors}-actor output differs from the Translator's")
            return took

        started = time.perf_counter()
        expected = [translator.translate(lines[i:i + args.batch_size], **options)
                    for i in range(0, len(lines), args.batch_size)]
        expected = [t for chunk in expected for t in chunk]
        local = time.perf_counter() - started
        times = {1: [], args.actors: []}
        for r in range(args.repeat):
            for actors in ((1, args.actors) if r % 2 == 0 else (args.actors, 1)):
                times[actors].append(on_ray(actors))
        ray.shutdown()

    one, many = statistics.median(times[1]), statistics.median(times[args.actors])
    n = len(lines)
    print(f"\n`{shlex.join(['python', 'tools/bench_ray.py', *(argv or sys.argv[1:])])}` (median of "
          f"{args.repeat}; {n} sentences, beam {args.beam_size}, batches of {args.batch_size}, "
          f"{args.task_batches} per Ray task; output checked against the Translator's)\n")
    print("| model | one Translator, in process | Ray, 1 actor | "
          f"Ray, {args.actors} actors | {args.actors} actors / 1 actor |")
    print("|---|---|---|---|---|")
    print(f"| {label} | {n / local:.0f} sent/s | {n / one:.0f} sent/s ({one:.1f} s) | "
          f"{n / many:.0f} sent/s ({many:.1f} s) | {one / many:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
