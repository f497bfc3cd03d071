"""Shared by the tools that make framework fixtures (make_opennmt_fixtures.py,
make_joeynmt_fixtures.py)."""
from __future__ import annotations

import os
import random
import subprocess
import sys

# the toy task every fixture model learns: reverse a sequence of letters, upper-cased
LETTERS = list("abcdefghijkl")


def run_command(command, env=None, cwd=None):
    """Run a framework command; on failure show the end of its output and stop."""
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    if result.returncode:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"failed: {' '.join(command)}")
    return result


def write_reversal_task(work: str, dev_name: str, target_ext: str) -> None:
    """train (3000) and dev (50) pairs of the toy task as `{split}.src` / `{split}.{target_ext}`
    (seeded: the same data for every framework)."""
    rng = random.Random(0)
    for split, count in (("train", 3000), (dev_name, 50)):
        with open(os.path.join(work, f"{split}.src"), "w") as s, \
                open(os.path.join(work, f"{split}.{target_ext}"), "w") as t:
            for _ in range(count):
                x = [rng.choice(LETTERS) for _ in range(rng.randint(2, 7))]
                s.write(" ".join(x) + "\n")
                t.write(" ".join(c.upper() for c in reversed(x)) + "\n")
