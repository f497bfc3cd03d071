"""What the benchmarks feed their engines: random source sentences, and a model directory
(the given one, or a random model of a named size)."""
from __future__ import annotations

import os

import numpy as np


def random_sources(vocab_size: int, count: int, length: int, seed: int = 0) -> list[list[int]]:
    """`count` sentences of `length` token ids, none of them a special token (ids 0-3)."""
    rng = np.random.default_rng(seed)
    return [list(rng.integers(4, vocab_size, length)) for _ in range(count)]


def model_or_random(model_dir: str | None, size: str, directory: str) -> tuple[str, str]:
    """(model directory, label): `model_dir` itself, or a random model of `size`
    (random_model.sized_config) written into `directory`."""
    if model_dir is not None:
        return model_dir, model_dir
    from ..random_model import sized_config, write_random_model
    path = os.path.join(directory, "model")
    config, source_size, target_size = sized_config(size)
    write_random_model(path, config, source_size, target_size)
    return path, f"random '{size}' model"
