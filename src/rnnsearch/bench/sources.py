"""Random source sentences, the workload every benchmark feeds its engines."""
from __future__ import annotations

import numpy as np


def random_sources(vocab_size: int, count: int, length: int, seed: int = 0) -> list[list[int]]:
    """`count` sentences of `length` token ids, none of them a special token (ids 0-3)."""
    rng = np.random.default_rng(seed)
    return [list(rng.integers(4, vocab_size, length)) for _ in range(count)]
