"""What tools/bench_serve.py and tools/bench_ray.py share: the model they load and the
single words they feed the default G2P model."""
from __future__ import annotations

import os

import numpy as np

from rnnsearch.random_model import sized_config, write_random_model

LETTERS = list("abcdefghijklmnopqrstuvwxyz")


def add_model_arguments(p) -> None:
    p.add_argument("-m", "--model", default=None, help="model directory (default: G2P)")
    p.add_argument("--size", default=None, choices=["small", "medium", "nmt"],
                   help="a random model of this size instead")
    p.add_argument("--source-length", type=int, default=20, help="random models only")


def bench_model(args, tmp: str) -> tuple[str | None, str]:
    """(model path, label): --model, a random --size model written into tmp, or the default
    G2P model (path None)."""
    if args.size is None:
        return args.model, args.model or "default G2P (per word)"
    path = os.path.join(tmp, "model")
    config, source_size, target_size = sized_config(args.size)
    write_random_model(path, config, source_size, target_size)
    return path, f"random '{args.size}'"


def random_words(count: int, seed: int = 0) -> list[str]:
    """Letter strings of 3 to 10 letters, the G2P model's single-word requests."""
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(LETTERS, size=rng.integers(3, 11))) for _ in range(count)]
