"""Two small synthetic tasks whose sources are feature arrays, not token ids (NumPy only,
seeded): the fixture tool trains user-style PyTorch models on them
(tools/make_feature_fixtures.py) and the tests draw held-out inputs from them.

- shapes: naming coloured shapes in a 4 x 4 grid of "CNN" region features (Show, Attend and
  Tell): an image holds 1-3 objects in distinct cells, each region's feature vector is
  noise plus a colour vector and a shape vector; the caption names the objects in reading
  order, "red circle and blue square".
- digits: transcribing spoken-digit-like spectral patterns (Listen, Attend and Spell): each
  digit is a few frames with energy in two bands of its own that glide over time, spoken
  at a random rate and loudness, separated by short silences; the transcript is the digits.
"""
from __future__ import annotations

import numpy as np

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]

# ---- shapes ------------------------------------------------------------------------------
GRID = 4
REGIONS = GRID * GRID
REGION_FEATURES = 32
COLOURS = ["red", "green", "blue", "yellow"]
SHAPES = ["circle", "square", "triangle"]
SHAPES_VOCAB = SPECIALS + COLOURS + SHAPES + ["and"]


def _shape_codes():
    rng = np.random.default_rng(1234)
    colours = rng.standard_normal((len(COLOURS), REGION_FEATURES))
    shapes = rng.standard_normal((len(SHAPES), REGION_FEATURES))
    return colours, shapes


def shapes_example(rng: np.random.Generator):
    """(regions [16, 32] float32, caption tokens)."""
    colours, shapes = _shape_codes()
    regions = rng.normal(0.0, 0.4, (REGIONS, REGION_FEATURES))
    count = int(rng.integers(1, 4))
    cells = sorted(rng.choice(REGIONS, size=count, replace=False))
    words = []
    for cell in cells:
        c, s = int(rng.integers(len(COLOURS))), int(rng.integers(len(SHAPES)))
        regions[cell] += colours[c] + shapes[s]
        words += (["and"] if words else []) + [COLOURS[c], SHAPES[s]]
    return regions.astype(np.float32), words


# ---- digits ------------------------------------------------------------------------------
BANDS = 16
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DIGITS_VOCAB = SPECIALS + DIGITS


def _digit_frames(d: int, rng: np.random.Generator) -> np.ndarray:
    """One spoken digit: 3-6 frames, two bumps that glide from (low_d, high_d)."""
    frames = int(rng.integers(3, 7))
    low, high = 1 + (d * 7) % 6, 8 + (d * 3) % 7
    glide = (d % 3) - 1                       # falling, flat or rising
    bands = np.arange(BANDS)
    out = np.empty((frames, BANDS))
    for t in range(frames):
        shift = glide * t / max(frames - 1, 1) * 2.0
        out[t] = np.exp(-0.5 * ((bands - low - shift) / 0.9) ** 2) + \
            0.8 * np.exp(-0.5 * ((bands - high + shift) / 1.1) ** 2)
    return out


def digits_example(rng: np.random.Generator, min_digits: int = 2, max_digits: int = 5):
    """(frames [T, 16] float32 log-energy-like features, transcript tokens)."""
    gain = rng.uniform(0.7, 1.3)
    parts, words = [rng.normal(0, 0.05, (int(rng.integers(1, 4)), BANDS))], []
    for _ in range(int(rng.integers(min_digits, max_digits + 1))):
        d = int(rng.integers(10))
        words.append(DIGITS[d])
        parts.append(gain * _digit_frames(d, rng) + rng.normal(0, 0.08, (1, BANDS)))
        parts.append(rng.normal(0, 0.05, (int(rng.integers(1, 4)), BANDS)))
    frames = np.concatenate(parts) + rng.normal(0, 0.05, (1, BANDS))
    return frames.astype(np.float32), words


def dataset(task: str, count: int, seed: int):
    """`count` (array, tokens) pairs of a task, seeded."""
    rng = np.random.default_rng(seed)
    make = shapes_example if task == "shapes" else digits_example
    return [make(rng) for _ in range(count)]
