"""Options several `rnnsearch` commands share."""
from __future__ import annotations

import argparse

from .translator import COMPUTE_TYPES

COMPUTE_TYPE_HELP = ("how the matrix products run: float32 (default); int8 (weights quantized "
                     "per row at load: faster, slightly less exact); bfloat16 (weights and "
                     "inputs rounded to bfloat16, float32 sums: half the bytes of float32, "
                     "slightly less exact)")


def add_compute_type(p: argparse.ArgumentParser, default: str = "float32") -> None:
    p.add_argument("--compute-type", default=default, choices=list(COMPUTE_TYPES),
                   help=COMPUTE_TYPE_HELP)


def add_model_and_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", default=None,
                   help="model directory (default: the embedded English G2P model)")
    p.add_argument("-o", "--output", default=None,
                   help="output file, written completely or not at all (default stdout)")
