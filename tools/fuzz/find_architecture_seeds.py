"""Find seeds for the fuzzers' `architecture` target that build valid models of every kind.

    python tools/fuzz/find_architecture_seeds.py [--tries 20000] [--write]

The target's bytes are choices over the config schema, so a seed's meaning changes when the
schema grows: seeds that built a MoChA or pooling model may build an inconsistent config
(refused) after a new key is added, and the fuzzer then starts from nothing useful. This
draws random byte strings, keeps each one the target accepts and that adds a feature not yet
covered (attention type, key/value split, hard and gated attention, pooling, decoder type,
source kind, copy attention, ...; the strings are mostly zero bytes, since uniform ones
almost never make a consistent config), and with --write replaces the corpus' architecture seeds
that the target now refuses by these. Run it after changing the schema.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "src"))

from fuzz.targets import check, make  # noqa: E402

CORPUS = os.path.join(HERE, "corpus", "architecture")


def features(config: dict) -> set[str]:
    """What a written model exercises, as short tags (the seed's file name lists them)."""
    tags = {f"source-{config['source'].get('kind', 'ids')}",
            f"decoder-{config['decoder']['type']}"}
    attention = config.get("attention")
    if attention:
        tags.add(attention.get("type", "global"))
        tags.update(key for key in ("key_value", "local", "mocha", "gate")
                    if attention.get(key))
        if attention.get("hard"):
            tags.add("hard")
    if config["encoder"].get("pooling"):
        tags.add("pooling")
    if config.get("copy"):
        tags.add("copy")
    return tags


def search(tries: int, seed: int) -> dict[str, bytes]:
    target = make("architecture")
    rng = np.random.default_rng(seed)
    covered: set[str] = set()
    found = {}
    try:
        for _ in range(tries):
            # mostly zero bytes (zero = leave a key out, or its first choice): uniform bytes
            # almost never make a consistent config
            keep = rng.random(160) > rng.uniform(0.5, 0.9)
            data = (rng.integers(0, 256, 160, dtype=np.uint8) * keep).astype(np.uint8).tobytes()
            if check(target, data) != "ok":
                continue
            with open(os.path.join(target.folder, "config.json"), encoding="utf-8") as f:
                tags = features(json.load(f))
            if tags - covered:
                covered |= tags
                found["-".join(sorted(tags - {"source-ids", "global"}))[:80] or "plain"] = data
    finally:
        target.close()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true",
                        help="replace the refused architecture seeds by the ones found")
    args = parser.parse_args()
    found = search(args.tries, args.seed)
    for name in found:
        print(f"found  seed-{name}")
    if args.write:
        target = make("architecture")
        try:
            for name in sorted(os.listdir(CORPUS)):
                path = os.path.join(CORPUS, name)
                with open(path, "rb") as f:
                    if check(target, f.read()) != "ok":
                        os.remove(path)
                        print(f"removed {name} (refused now)")
        finally:
            target.close()
        for name, data in found.items():
            with open(os.path.join(CORPUS, f"seed-{name}"), "wb") as f:
                f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
