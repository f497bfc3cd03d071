"""Converters: framework exports in, one canonical model directory out.

Each format lives in its own subpackage (onnx/, torch/, opennmt/, joeynmt/, keras/,
marian/), whose __init__ exposes
    DESCRIPTION: str
    add_arguments(parser: argparse.ArgumentParser) -> None
    convert(args: argparse.Namespace) -> None     # writes args.output with write_model_dir
and its Python entry point, and is listed in FORMATS. `rnnsearch convert --from FORMAT ...
-o DIR` dispatches here. Helpers shared by several formats live in common/; a format's
subpackage imports from there and from the package root, never from another format's.
"""
from __future__ import annotations

import importlib

# format name -> module (imported only when that format is used: each may need its own
# optional dependency, e.g. onnx or torch)
FORMATS = {
    "onnx": "rnnsearch.convert.onnx",
    "torch": "rnnsearch.convert.torch",
    "opennmt-py": "rnnsearch.convert.opennmt",
    "joeynmt": "rnnsearch.convert.joeynmt",
    "keras": "rnnsearch.convert.keras",
    "marian": "rnnsearch.convert.marian",
}


def available_formats() -> dict[str, str]:
    """{format: description} for the formats whose module exists."""
    found = {}
    for name, module in FORMATS.items():
        try:
            found[name] = importlib.import_module(module).DESCRIPTION
        except ModuleNotFoundError as e:
            if e.name == module:
                continue
            found[name] = f"(unavailable: {e})"
    return found


def load_format(name: str):
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}; choose one of {sorted(FORMATS)}")
    return importlib.import_module(FORMATS[name])
