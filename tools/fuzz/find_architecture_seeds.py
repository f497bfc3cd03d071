"""Find seeds for the fuzzers' `architecture` target that build valid models of every kind.

    python tools/fuzz/find_architecture_seeds.py [--tries 20000] [--write]

The target's bytes are choices over the config schema, so a seed's meaning changes when the
schema grows: seeds that built a MoChA or pooling model may build an inconsistent config
(refused) after a new key is added, and the fuzzer then starts from nothing useful. This
draws random byte strings, keeps each one the target accepts and that adds a feature not yet
covered (attention type, key/value split, hard and gated attention, pooling, decoder type,
source kind, copy attention, ...; the strings are mostly zero bytes, since uniform ones
almost never make a consistent config; then consistent ones with new bytes where the
stateful attention types are chosen, or a few bytes changed), and with --write replaces the corpus' architecture seeds
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
# the source tree after an installed rnnsearch (whose engine is compiled)
sys.path.append(os.path.join(os.path.dirname(os.path.dirname(HERE)), "src"))

from fuzz.targets import check, make  # noqa: E402
from rnnsearch.stateful_attention import STATEFUL_TYPES  # noqa: E402

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
        tags.update(stateful_features(attention))
    if config["encoder"].get("pooling"):
        tags.add("pooling")
    if config.get("copy"):
        tags.add("copy")
    return tags


def stateful_features(attention: dict) -> set[str]:
    """The attention types that carry state, by the variants the frameworks name (ESPnet's
    location2d = location input 'history', coverage_location = 'cumulative', ...)."""
    tags = set()
    location, coverage = attention.get("location"), attention.get("coverage")
    if location and attention["type"] == "location":
        tags.add(f"location_{location.get('input', 'previous')}")
        if location.get("recurrent"):
            tags.add("location_recurrent")
    if coverage:
        tags.add(f"coverage_{coverage.get('update', 'sum')}")
    if (attention.get("forward") or {}).get("transition_agent"):
        tags.add("transition_agent")
    heads = attention.get("multi_head")
    if heads:
        tags.add(f"multi_head_{attention['score']}")
        if location:
            tags.add("multi_head_location")
        if heads.get("value_size") is not None:
            tags.add("multi_head_values")
        if len(set(heads.get("kernel_sizes") or [])) > 1:
            tags.add("multi_head_multi_res")
    if attention.get("scaling", 1) != 1:
        tags.add("scaling")
    return tags


def search(tries: int, seed: int) -> dict[str, bytes]:
    """The committed seeds, `tries` random byte strings; then, half as many times, a seed found so far (each
    adds a kind: the rare ones) with a few bytes changed: new bytes for the stateful
    attention stage's sub-objects (after its first five bytes -- on, type, score, size --
    for a stateful seed, from its start otherwise: a consistent stateful config needs
    several bytes there at once, which random strings rarely have), or one to three bytes
    anywhere."""
    target = make("architecture")
    rng = np.random.default_rng(seed)
    covered: set[str] = set()
    found, stage_at, stateful = {}, {}, set()

    def keep_if_new(data: bytes) -> None:
        if check(target, data) != "ok":
            return
        with open(os.path.join(target.folder, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        tags = features(config)
        if tags - covered:
            covered.update(tags)
            name = "-".join(sorted(tags - {"source-ids", "global"}))[:80] or "plain"
            found[name], stage_at[name] = data, target.stateful_at
            if (config.get("attention") or {}).get("type") in STATEFUL_TYPES:
                stateful.add(name)

    try:
        for name in sorted(os.listdir(CORPUS)):    # the committed seeds first
            with open(os.path.join(CORPUS, name), "rb") as f:
                keep_if_new(f.read())
        for _ in range(tries):
            # mostly zero bytes (zero = leave a key out, or its first choice): uniform bytes
            # almost never make a consistent config
            keep = rng.random(160) > rng.uniform(0.5, 0.9)
            keep_if_new((rng.integers(0, 256, 160, dtype=np.uint8) * keep).astype(np.uint8)
                        .tobytes())
        for _ in range(tries // 2 if found else 0):
            name = list(found)[rng.integers(len(found))]
            at = stage_at[name] + (5 if name in stateful else 0)
            data = bytearray(found[name].ljust(at + 24, b"\0"))
            if rng.random() < 0.7:
                stage = rng.integers(0, 256, 24, dtype=np.uint8) * (rng.random(24) > 0.3)
                data[at:at + 24] = stage.astype(np.uint8).tobytes()
            else:
                for _ in range(rng.integers(1, 4)):
                    data[rng.integers(len(data))] = rng.integers(0, 256)
            keep_if_new(bytes(data))
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
