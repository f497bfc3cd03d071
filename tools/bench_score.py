"""Forced decoding (score_batch) speed: rnnsearch's C engine against PyTorch teacher forcing
on the same weights (rnnsearch.reference.Seq2Seq: one batched forward, padded targets, in
torch.inference_mode), one thread each, alternating, median [min-max] of the repetitions.
The two must agree on the log-probabilities (checked every run).

    python tools/bench_score.py [--size small|medium|nmt] [--batch 32] [--repeat 5]

Prints a Markdown table and the command line.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="medium", choices=["small", "medium", "nmt"])
    parser.add_argument("--batch", type=int, default=32, help="sentence pairs per call")
    parser.add_argument("--calls", type=int, default=4, help="calls per repetition")
    parser.add_argument("--source-length", type=int, default=25)
    parser.add_argument("--target-length", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import torch

    import rnnsearch
    from rnnsearch.random_model import sized_config, write_random_model
    from rnnsearch.reference import load_model_dir

    torch.set_num_threads(1)
    config, vs, vt = sized_config(args.size)
    directory = tempfile.mkdtemp(prefix="bench-score-")
    write_random_model(directory, config, vs, vt, seed=0)
    translator = rnnsearch.Translator(directory)
    model, bos, eos = load_model_dir(directory)
    rng = np.random.default_rng(0)
    n = args.batch * args.calls
    sources = rng.integers(4, vs, (n, args.source_length))
    targets = rng.integers(4, vt, (n, args.target_length))
    src_tokens = [[translator.source_vocab.tokens[i] for i in s] for s in sources]
    tgt_tokens = [[translator.target_vocab.tokens[i] for i in t] for t in targets]

    def run_rnnsearch():
        out = []
        for i in range(0, n, args.batch):
            out += translator.score_batch(src_tokens[i:i + args.batch],
                                          tgt_tokens[i:i + args.batch])
        return np.array([r.log_probs for r in out])

    def run_torch():
        out = []
        with torch.inference_mode():
            for i in range(0, n, args.batch):
                src = torch.tensor(sources[i:i + args.batch])
                tgt = torch.tensor(targets[i:i + args.batch])
                tgt_in = torch.cat([torch.full((len(tgt), 1), bos), tgt], dim=1)
                gold = torch.cat([tgt, torch.full((len(tgt), 1), eos)], dim=1)
                log_probs = model(src, torch.full((len(src),), args.source_length), tgt_in)
                out.append(log_probs.gather(2, gold.unsqueeze(2)).squeeze(2).numpy())
        return np.concatenate(out)

    np.testing.assert_allclose(run_rnnsearch(), run_torch(), atol=1e-3)   # same numbers
    times = {"rnnsearch": [], "PyTorch": []}
    for _ in range(args.repeat):
        for name, run in (("rnnsearch", run_rnnsearch), ("PyTorch", run_torch)):
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1000 / n)
    command = "python " + " ".join([os.path.relpath(__file__)] + sys.argv[1:])
    print(f"`{command}` ({args.size} model; batch {args.batch}; source {args.source_length}, "
          f"target {args.target_length} tokens + EOS; 1 thread)\n")
    print("| engine | ms per sentence pair | × |")
    print("|---|---|---|")
    base = statistics.median(times["rnnsearch"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} [{min(values):.3f}–{max(values):.3f}] | "
              f"{median / base:.1f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
