"""Options several `rnnsearch` commands share."""
from __future__ import annotations

import argparse


def add_model_and_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", default=None,
                   help="model directory (default: the embedded English G2P model)")
    p.add_argument("-o", "--output", default=None,
                   help="output file, written completely or not at all (default stdout)")
