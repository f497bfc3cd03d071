"""`rnnsearch bench --scaling`: how rnnsearch's cost grows with the work, on one model.

    rnnsearch bench --scaling                      # nmt size, sources 10/50/200/800 tokens
    rnnsearch bench --scaling --quick              # a smoke run, seconds
    rnnsearch bench --scaling --size medium --beam 1 --target-lengths 10,40,160,640

For every source length S and target length T the same `--batch` random sentences are
translated with exactly T target tokens (min = max decoding length). At each S the time
over T is a straight line if nothing grows with the target history: its slope is the cost
of one decoder step, its intercept the cost paid once per call (encoder, setup). Attention
reads all S encoder positions every step, so the per-step cost must be a + b·S: the report
fits that line and gives every measured point against it, and the extra cost per source
token between consecutive lengths (equal everywhere = linear; growing = faster than
linear). Every shape is warmed up first; wall and CPU time are each the best of
`--repeat`.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

from .sources import model_or_random, random_sources
from .timing import timed

SOURCE_LENGTHS = "10,50,200,800"
TARGET_LENGTHS = "10,40,160"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rnnsearch bench --scaling",
        description="rnnsearch's decoding time over source length and target length: "
                    "per-step cost (slope over target length) against source length.")
    p.add_argument("-m", "--model", default=None, help="model directory (default: random)")
    p.add_argument("--size", default="nmt", choices=["small", "medium", "nmt"],
                   help="size of the random model when no -m is given (default nmt)")
    p.add_argument("--source-lengths", default=None,
                   help=f"comma-separated source lengths (default {SOURCE_LENGTHS})")
    p.add_argument("--target-lengths", default=None,
                   help=f"comma-separated target lengths, at least two (default "
                        f"{TARGET_LENGTHS})")
    p.add_argument("--batch", type=int, default=1, help="sentences per call (default 1)")
    p.add_argument("--beam", type=int, default=5, help="beam size (default 5)")
    p.add_argument("--threads", type=int, default=1, help="engine threads (default 1)")
    p.add_argument("--repeat", type=int, default=None, help="repetitions (default 3; quick 1)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: small model, sources 5/10/20, targets 3/6, 1 repetition")
    return p


def resolve_defaults(args, argv: list[str]) -> None:
    args.command = " ".join(["rnnsearch bench --scaling", *argv])
    quick = args.quick
    if quick and args.model is None and "--size" not in argv:
        args.size = "small"
    sources = args.source_lengths or ("5,10,20" if quick else SOURCE_LENGTHS)
    targets = args.target_lengths or ("3,6" if quick else TARGET_LENGTHS)
    args.sources = sorted({int(s) for s in sources.split(",")})
    args.targets = sorted({int(t) for t in targets.split(",")})
    args.repeat = args.repeat or (1 if quick else 3)
    if len(args.targets) < 2 or len(args.sources) < 2:
        raise ValueError("--source-lengths and --target-lengths need at least two lengths each")
    if min(*args.sources, *args.targets, args.batch, args.beam, args.threads,
           args.repeat) < 1:
        raise ValueError("lengths, --batch, --beam, --threads and --repeat must be positive")


def measure(translator, args) -> dict[tuple[int, int], tuple[float, float]]:
    """(S, T) -> (wall ms, CPU ms) of one call of `args.batch` sentences, each the best of
    `args.repeat` (what is measured is how the cost grows, and on a shared machine other work
    only ever adds time)."""
    words = translator.source_vocab.tokens
    results = {}
    for S in args.sources:
        batch = [[words[i] for i in sentence]
                 for sentence in random_sources(len(words), args.batch, S)]
        for T in args.targets:
            def run():
                translator.translate_batch(batch, beam_size=args.beam,
                                           min_decoding_length=T, max_decoding_length=T)
            run()   # warm-up: this shape's buffers
            walls, cpus = zip(*(timed(run) for _ in range(args.repeat)))
            results[(S, T)] = (1000 * min(walls), 1000 * min(cpus))
            print(f"  source {S}, target {T}: {results[(S, T)][0]:.1f} ms", file=sys.stderr,
                  flush=True)
    return results


def line_fit(x, y) -> tuple[float, float]:
    """Least-squares (intercept, slope) of y over x."""
    slope, intercept = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return float(intercept), float(slope)


def analyse(results: dict, sources: list[int], targets: list[int], which: int) -> dict:
    """Per source length: per-step ms (slope over T) and fixed ms (intercept); the line
    a + b·S through the per-step costs; per target interval the per-step cost."""
    per_source = {}
    for S in sources:
        fixed, step = line_fit(targets, [results[(S, T)][which] for T in targets])
        intervals = [(results[(S, b)][which] - results[(S, a)][which]) / (b - a)
                     for a, b in zip(targets, targets[1:])]
        per_source[S] = {"step_ms": step, "fixed_ms": fixed, "interval_step_ms": intervals}
    a, b = line_fit(sources, [per_source[S]["step_ms"] for S in sources])
    increments = [(per_source[t]["step_ms"] - per_source[s]["step_ms"]) / (t - s)
                  for s, t in zip(sources, sources[1:])]
    return {"per_source": per_source, "step_intercept_ms": a, "step_per_source_token_ms": b,
            "increments_ms_per_token": increments}


def report(args, label: str, results: dict) -> str:
    wall, cpu = analyse(results, args.sources, args.targets, 0), \
        analyse(results, args.sources, args.targets, 1)
    load, cores = os.getloadavg()[0], os.cpu_count()
    lines = ["# rnnsearch: cost as work grows\n", f"`{args.command}`\n",
             f"model {label}; batch {args.batch}, beam {args.beam}, {args.threads} thread(s), "
             f"best of {args.repeat}; load average {load:.1f} on {cores} cores"
             + (" (other processes running: noisy)" if load > 0.5 * cores else "") + "\n"]
    header = (["source tokens"] + [f"T={T} ms" for T in args.targets]
              + ["per step ms (slope)", "per step, CPU ms", "fixed ms (intercept)",
                 "per step vs a + b·S", "per step over T intervals ms"])
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for S in args.sources:
        w, c = wall["per_source"][S], cpu["per_source"][S]
        fitted = wall["step_intercept_ms"] + wall["step_per_source_token_ms"] * S
        cells = ([str(S)] + [f"{results[(S, T)][0]:.1f}" for T in args.targets]
                 + [f"{w['step_ms']:.3f}", f"{c['step_ms']:.3f}", f"{w['fixed_ms']:.1f}",
                    f"{w['step_ms'] / fitted:.2f}",
                    " / ".join(f"{v:.3f}" for v in w["interval_step_ms"])])
        lines.append("| " + " | ".join(cells) + " |")
    pairs = list(zip(args.sources, args.sources[1:]))

    def increments(analysis):
        return ", ".join(f"{s}→{t}: {1000 * v:.2f}"
                         for (s, t), v in zip(pairs, analysis["increments_ms_per_token"]))
    lines += ["",
              f"- per step = {wall['step_intercept_ms']:.3f} ms + "
              f"{1000 * wall['step_per_source_token_ms']:.3f} µs × source tokens (wall; CPU: "
              f"{cpu['step_intercept_ms']:.3f} ms + "
              f"{1000 * cpu['step_per_source_token_ms']:.3f} µs); 'per step vs a + b·S' is "
              f"each measured per-step cost over that line (1.00 = on it)",
              f"- extra per-step cost per source token between consecutive lengths (µs): wall "
              f"{increments(wall)}; CPU {increments(cpu)} — equal = linear, growing = faster "
              f"than linear",
              "- 'per step over T intervals': the per-step cost between consecutive target "
              "lengths; equal = nothing grows with the target history"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ..translator import Translator
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    resolve_defaults(args, argv)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, label = model_or_random(args.model, args.size, tmp)
        translator = Translator(model_dir, intra_threads=args.threads)
        results = measure(translator, args)
    print(report(args, label, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
