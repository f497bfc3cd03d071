"""The cost of a decoder step per attention type, at growing source lengths.

Random models of one size that differ only in their attention (global, local-m, local-p,
monotonic, mocha, each with general scores; local windows of 2D+1 = 21 positions) decode
the same random sources greedily, batch 1, every hypothesis forced to the same number of
steps (min = max decoding length), alternating the types within each repetition. A
decoder step's time is that of `steps` steps minus that of one step (which holds the
encoding), over steps - 1. The table gives its median in CPU time and its ratio to global
attention: local attention reads 2D+1 positions instead of S, so its step should cost
less than global's at long sources.

    python tools/bench_attention.py [--lengths 50,200,1000] [--steps 41] [--repeat 5]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np

import rnnsearch
from rnnsearch.random_model import write_random_model

TYPES = {
    "global": {"score": "general"},
    "local-m": {"type": "local", "score": "general",
                "local": {"mode": "monotonic", "window": 10}},
    "local-p": {"type": "local", "score": "general",
                "local": {"mode": "predictive", "window": 10, "position_size": 128}},
    "monotonic": {"type": "monotonic", "score": "general"},
    "mocha": {"type": "mocha", "score": "general", "mocha": {"chunk_size": 4, "size": 128}},
}


def _config(attention: dict, hidden: int, embedding: int, max_length: int) -> dict:
    return {"format": "rnnsearch-model", "format_version": 1,
            "source": {"max_length": max_length},
            "encoder": {"embedding_size": embedding, "cell": "lstm", "hidden_size": hidden,
                        "bidirectional": True},
            "bridge": {"type": "zeros"},
            "attention": attention,
            "decoder": {"type": "luong", "embedding_size": embedding, "cell": "lstm",
                        "hidden_size": 2 * hidden, "input_feeding": True}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", default="50,200,1000", help="source lengths")
    p.add_argument("--steps", type=int, default=41, help="decoder steps per sentence (>= 2)")
    p.add_argument("--sentences", type=int, default=4, help="sentences per measurement")
    p.add_argument("--repeat", type=int, default=5, help="repetitions (median reported)")
    p.add_argument("--hidden", type=int, default=256, help="encoder units per direction")
    p.add_argument("--embedding", type=int, default=256)
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--types", default=",".join(TYPES))
    args = p.parse_args(argv)
    lengths = [int(x) for x in args.lengths.split(",")]
    names = args.types.split(",")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as root:
        translators = {}
        for name in names:
            path = f"{root}/{name}"
            write_random_model(path, _config(TYPES[name], args.hidden, args.embedding,
                                             max(lengths)), args.vocab, args.vocab, seed=1)
            translators[name] = rnnsearch.Translator(path)
        rows = []
        for S in lengths:
            sources = [list(rng.integers(4, args.vocab, S)) for _ in range(args.sentences)]
            times = {name: [] for name in names}
            for _ in range(args.repeat):
                for name in names:  # alternating, warm after the first repetition
                    engine = translators[name]._engine
                    spent = {}
                    for steps in (1, args.steps):
                        start = time.process_time()
                        for source in sources:
                            engine.translate([source], beam_size=1, min_length=steps,
                                             max_length=steps)
                        spent[steps] = time.process_time() - start
                    times[name].append((spent[args.steps] - spent[1]) /
                                       (args.sentences * (args.steps - 1)))
            rows.append((S, {name: float(np.median(t[1:] or t)) for name, t in times.items()}))
    command = " ".join(["python tools/bench_attention.py"] +
                       (argv if argv is not None else sys.argv[1:]))
    print(f"`{command}` (LSTM {args.hidden}x2 encoder, Luong LSTM {2 * args.hidden} decoder with input "
          f"feeding, vocabulary {args.vocab}; greedy, batch 1; CPU ms per decoder step, "
          "encoding excluded; ratio to global)\n")
    print("| source length | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for S, t in rows:
        cells = [f"{t[n] * 1e3:.3f}" + ("" if n == "global" else f" ({t[n] / t['global']:.2f}x)")
                 if "global" in t else f"{t[n] * 1e3:.3f}" for n in names]
        print(f"| {S} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
