"""Per-call and per-step overhead on small models and small batches (issue 20, part 4).

    python tools/bench_overhead.py [--sentences 60] [--repeat 5] [--calls 2000]
        [--onmt /tmp/onmt3-venv]

Prints Markdown tables:

1. **A trivial call**: a random attention-free GRU model (embeddings 64, hidden 256,
   vocabularies 100), a 1-token source, greedy, max_decoding_length 1. `Engine.translate`
   (the compiled engine, ids in and ids out) and `Translator.translate_batch` (tokens in,
   TranslationResults out) are timed over `--calls` calls, `--repeat` times, alternating;
   the fastest repetition is reported (the overhead a quiet core sees), in process CPU
   time and in wall time. The arithmetic of
   that call is one encoder position and one decoder step: each is measured as the marginal
   cost of 16 more (a 17-token source; 17 forced decoder steps), and the engine overhead is
   the call minus both.
2. **A small model's throughput**: a random OpenNMT-py-shaped model (embeddings 64, 2-layer
   LSTM 128 encoder and decoder, general attention, input feeding, vocabularies 200),
   `--sentences` sources of 15-25 tokens, greedy and beam 5, `translate_batch` at batch 1
   (one call per sentence) and batch 30; sentences per second (median of `--repeat`,
   wall and process CPU time), the batch-30 / batch-1 ratio. Outputs at batch 30 are checked
   identical to batch 1.
3. With `--onmt VENV` (a virtualenv with OpenNMT-py, as tools/bench_opennmt.py uses):
   tools/bench_opennmt.py's in-process comparison on its `lstm128` preset, the same shape
   trained one step by OpenNMT-py and converted (search="opennmt", onmt_translate's
   defaults, beam 5, batch 1 and 30).

One thread everywhere. On a shared machine the timings are inflated by waiting for a core;
the CPU columns are the steadier ones.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

from rnnsearch import Translator  # noqa: E402
from rnnsearch.bench.timing import rotated, timed  # noqa: E402
from rnnsearch.random_model import write_random_model  # noqa: E402

TRIVIAL = {
    "format": "rnnsearch-model", "format_version": 1,
    "encoder": {"embedding_size": 64, "cell": "gru", "hidden_size": 256},
    "bridge": {"type": "last"}, "attention": None,
    "decoder": {"type": "none", "embedding_size": 64, "cell": "gru", "hidden_size": 256},
}
SMALL = {
    "format": "rnnsearch-model", "format_version": 1,
    "encoder": {"embedding_size": 64, "cell": "lstm", "hidden_size": 128, "num_layers": 2},
    "bridge": {"type": "last"}, "attention": {"score": "general"},
    "decoder": {"type": "luong", "embedding_size": 64, "cell": "lstm", "hidden_size": 128,
                "num_layers": 2, "input_feeding": True},
}
MARGINAL = 16   # extra encoder positions / decoder steps that measure the arithmetic
SOURCE_LENGTH = (15, 25)


def fastest_per_call(runs: dict, calls: int, repeat: int) -> dict[str, tuple[float, float]]:
    """Microseconds per call of each run, (process CPU time, wall time), each the fastest of
    `repeat` rounds of `calls` calls, the runs alternating in a rotated order."""
    for run in runs.values():
        run()
    best = {name: (float("inf"), float("inf")) for name in runs}
    for repetition in range(repeat):
        for name in rotated(list(runs), repetition):
            run = runs[name]
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                run()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            best[name] = (min(best[name][0], cpu * 1e6 / calls),
                          min(best[name][1], wall * 1e6 / calls))
    return best


def trivial_call(directory: str, calls: int, repeat: int) -> list[str]:
    path = os.path.join(directory, "trivial")
    write_random_model(path, TRIVIAL, 100, 100)
    tr = Translator(path)
    engine = tr._engine
    steps = MARGINAL + 1
    runs = {
        "engine": lambda: engine.translate([[5]], beam_size=1, max_length=1),
        "engine, longer source": lambda: engine.translate([[5] * steps], beam_size=1,
                                                          max_length=1),
        "engine, more steps": lambda: engine.translate([[5]], beam_size=1, min_length=steps,
                                                       max_length=steps),
        "translate_batch": lambda: tr.translate_batch([["s1"]], beam_size=1,
                                                      max_decoding_length=1),
    }
    us = fastest_per_call(runs, calls, repeat)

    def overhead(whole):   # the call minus one encoder position and one decoder step
        return tuple(us[whole][i] - (us["engine, longer source"][i] - us["engine"][i]
                                     + us["engine, more steps"][i] - us["engine"][i])
                     / MARGINAL for i in (0, 1))

    def cells(values):
        return " | ".join(f"{v:.2f}" for v in values)

    arithmetic = [f"{(us['engine, longer source'][i] - us['engine'][i]) / MARGINAL:.2f} + "
                  f"{(us['engine, more steps'][i] - us['engine'][i]) / MARGINAL:.2f}"
                  for i in (0, 1)]
    return [
        "**Trivial call** (attention-free GRU 256, embeddings 64, vocabularies 100; 1-token "
        f"source, greedy, max_decoding_length 1; fastest of {repeat} x {calls} calls)",
        "",
        "| what | µs per call, CPU | µs per call, wall |",
        "|---|---|---|",
        f"| Engine.translate, whole call | {cells(us['engine'])} |",
        "| its arithmetic: one encoder position + one decoder step (marginal costs) | "
        f"{arithmetic[0]} | {arithmetic[1]} |",
        f"| **engine overhead** (call − arithmetic) | {cells(overhead('engine'))} |",
        f"| Translator.translate_batch, whole call | {cells(us['translate_batch'])} |",
        f"| **Translator overhead** (call − arithmetic) | "
        f"{cells(overhead('translate_batch'))} |",
    ]


def throughput(directory: str, sentences: int, repeat: int) -> list[str]:
    path = os.path.join(directory, "small")
    write_random_model(path, SMALL, 200, 200)
    tr = Translator(path)
    rng = np.random.default_rng(1)
    words = tr.source_vocab.tokens[4:]
    sources = [[words[i] for i in rng.integers(0, len(words), rng.integers(*SOURCE_LENGTH,
                                                                          endpoint=True))]
               for _ in range(sentences)]
    lines = [
        f"**Small model** (random; embeddings 64, 2-layer LSTM 128 encoder and decoder, "
        f"general attention, input feeding, vocabularies 200; {sentences} sentences of "
        f"{SOURCE_LENGTH[0]}-{SOURCE_LENGTH[1]} tokens; translate_batch, max_decoding_length "
        f"50; median of {repeat})",
        "",
        "| search | batch 1 sent./s (CPU) | batch 30 sent./s (CPU) | batch 30 / batch 1 | "
        "target tokens per sentence |",
        "|---|---|---|---|---|",
    ]
    for beam in (1, 5):
        def run(batch, beam=beam):
            out = []
            for i in range(0, len(sources), batch):
                out += tr.translate_batch(sources[i:i + batch], beam_size=beam,
                                          max_decoding_length=50)
            return out
        one, thirty = run(1), run(30)
        if [r.hypotheses for r in one] != [r.hypotheses for r in thirty]:
            raise SystemExit("batch 30 differs from batch 1: the engine is broken")
        tokens = statistics.mean(len(r.hypotheses[0]) for r in one)
        rates = {1: ([], []), 30: ([], [])}
        for repetition in range(repeat):
            for batch in rotated([1, 30], repetition):
                wall, cpu = timed(lambda: run(batch))
                rates[batch][0].append(sentences / wall)
                rates[batch][1].append(sentences / max(cpu, 1e-9))
        b1, b30 = (statistics.median(rates[b][0]) for b in (1, 30))
        c1, c30 = (statistics.median(rates[b][1]) for b in (1, 30))
        lines.append(f"| {'greedy' if beam == 1 else f'beam {beam}'} | {b1:.0f} ({c1:.0f}) | "
                     f"{b30:.0f} ({c30:.0f}) | {b30 / b1:.2f}× ({c30 / c1:.2f}× CPU) | "
                     f"{tokens:.1f} |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sentences", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--calls", type=int, default=2000, help="calls per trivial-call round")
    ap.add_argument("--onmt", default=None,
                    help="virtualenv with OpenNMT-py: add its in-process comparison")
    args = ap.parse_args(argv)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as directory:
        print(f"load average at start: {load:.1f} on {os.cpu_count()} cores"
              + (" (timings are noisy)" if load > (os.cpu_count() or 1) / 2 else ""))
        print()
        print("\n".join(trivial_call(directory, args.calls, args.repeat)))
        print()
        print("\n".join(throughput(directory, args.sentences, args.repeat)))
        print()
    print("command: python tools/bench_overhead.py " + " ".join(
        argv if argv is not None else sys.argv[1:]))
    if args.onmt:
        print()
        sys.stdout.flush()
        sys.path.insert(0, os.path.join(ROOT, "tools"))
        import bench_opennmt
        return bench_opennmt.main(["--onmt", args.onmt, "--preset", "lstm128",
                                   "--sentences", str(args.sentences),
                                   "--repeat", str(args.repeat)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
