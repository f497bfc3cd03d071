"""A small deterministic mutation fuzzer in pure Python, for the CI smoke run and machines
without atheris: byte-level mutations of the seeds (flips, interesting values, cuts,
duplications, splices), and for JSON seeds structural ones (a value replaced by one of
another type, a huge number, a deep nesting, a key dropped or duplicated)."""
from __future__ import annotations

import json
import random

INTERESTING_BYTES = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff\xff\xff",
                     b"\x00\x00\x00\x80", b"\xff\xff\xff\x7f", b"\x00" * 8, b"\xff" * 8]
INTERESTING_VALUES = [None, True, False, 0, -1, 1, 2**31, 2**63, 10**100, -2**31, 1e39,
                      float("nan"), float("inf"), "", "..", "/etc/passwd", "../../x",
                      "\u0000", "\udc80", "a" * 10000, [], {}, [[[[[]]]]],
                      {"a": {"b": {"c": {}}}}, "1e999", "NaN"]


def structured(data: bytes) -> list[bytes]:
    """Deterministic corruptions of a real file, the way files really break: cut short at
    several points, a block zeroed or overwritten with 0xff (a bad sector, a partial
    write), a few bytes flipped in the middle."""
    n = len(data)
    out = [data[:cut] for cut in sorted({0, 8, n // 4, n // 2, 3 * n // 4, max(n - 1, 0)})]
    for at, fill in ((n // 3, 0x00), (2 * n // 3, 0x00), (n // 2, 0xFF), (16, 0xFF)):
        block = bytearray(data)
        block[at:at + 256] = bytes([fill]) * len(block[at:at + 256])
        out.append(bytes(block))
    flipped = bytearray(data)
    for at in range(n // 2, min(n, n // 2 + 4)):
        flipped[at] ^= 0x55
    out.append(bytes(flipped))
    return out


def mutate(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    """One mutant of `data` (others: seeds to splice with)."""
    if data[:1] in (b"{", b"[") and rng.random() < 0.5:
        structured = _mutate_json(data, rng)
        if structured is not None:
            return structured
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 8))):
        kind = rng.randrange(7)
        at = rng.randrange(len(out) + 1)
        if kind == 0 and out:                                   # flip bits
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        elif kind == 1:                                         # an interesting value
            value = rng.choice(INTERESTING_BYTES)
            out[at:at + len(value)] = value
        elif kind == 2 and out:                                 # cut
            end = min(len(out), at + rng.choice((1, 4, 64, 4096)))
            del out[at:end]
        elif kind == 3 and out:                                 # duplicate a chunk
            start = rng.randrange(len(out))
            chunk = out[start:start + rng.choice((1, 8, 256))]
            out[at:at] = chunk * rng.choice((1, 2, 16))
        elif kind == 4:                                         # truncate
            del out[at:]
        elif kind == 5 and others:                              # splice another seed
            other = rng.choice(others)
            cut = rng.randrange(len(other) + 1)
            out[at:] = other[cut:]
        elif out:                                               # random byte
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def _mutate_json(data: bytes, rng: random.Random) -> bytes | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    paths = list(_paths(value))
    if not paths:
        return None
    path = rng.choice(paths)
    kind = rng.randrange(4)
    replacement = rng.choice(INTERESTING_VALUES)
    if kind == 3:
        replacement = _nest(rng.choice((50, 500, 5000)))
    value = _replace(value, path, replacement, drop=kind == 2)
    try:
        return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")
    except (ValueError, RecursionError):
        return None


def _nest(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _replace(value, path, replacement, drop=False):
    if not path:
        return replacement
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        value = dict(value)
        if drop and not rest:
            value.pop(head, None)
        else:
            value[head] = _replace(value[head], rest, replacement, drop)
    else:
        value = list(value)
        if drop and not rest:
            del value[head]
        else:
            value[head] = _replace(value[head], rest, replacement, drop)
    return value
