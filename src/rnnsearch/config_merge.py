"""Merging a config.json object over its defaults: the one rule every section and option
object of the format follows (unknown keys refused, required keys demanded, defaults
filled), with the error messages that name the field. Imports nothing above errors.py.
"""
from __future__ import annotations

import copy

from .errors import ModelError

REQUIRED = object()  # marks a key without a default


def short(value) -> str:
    """A value as shown in an error message: its repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def merge_over_defaults(where: str, given: dict, defaults: dict, check=None) -> dict:
    """`given` (already known to be a dict) over `defaults`; `check(key, value)` is called on
    every merged value. Defaults are deep-copied: callers fill the result in place."""
    unknown = set(given) - set(defaults)
    if unknown:
        raise ModelError(f"config.json: unknown key(s) in {where}: "
                         f"{sorted(map(short, unknown))}")
    merged = {}
    for key, default in defaults.items():
        if key in given:
            merged[key] = given[key]
        elif default is REQUIRED:
            raise ModelError(f"config.json: {where}.{key} is required")
        else:
            merged[key] = copy.deepcopy(default)
        if check is not None:
            check(key, merged[key])
    return merged
