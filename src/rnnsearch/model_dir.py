"""Load and write model directories (docs/model-format.md)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from .errors import ModelError
from .model_spec import (FORMAT_NAME, FORMAT_VERSION, check_finite, check_tensors,
                         normalize_config)
from .safe_files import load_json, resolve_inside
from .safetensors_io import atomic_write, read_safetensors, write_safetensors
from .vocab import Vocabulary

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class ModelFiles:
    path: str
    config: dict                     # normalized: every default filled in
    tensors: dict[str, np.ndarray]   # float32 (or int8 + scales), memory-mapped
    source_vocab: Vocabulary
    target_vocab: Vocabulary


def load_model_dir(path: str) -> ModelFiles:
    """Read and validate everything; ModelError names the file and field at fault."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"model path must be a string, got {type(path).__name__}")
    path = os.fspath(path)
    try:
        is_dir = os.path.isdir(path)
    except ValueError:   # NUL in the path
        is_dir = False
    if not is_dir:
        raise ModelError(f"model directory not found: {path!r}")
    # every file is read from inside the directory, as a bounded regular file
    raw = load_json(resolve_inside(path, CONFIG_FILE, "config file"), "config file")
    config = normalize_config(raw)
    specials = config["special_tokens"]
    source_vocab = Vocabulary.load(resolve_inside(path, config["source"]["vocabulary"],
                                                  "config.json: source.vocabulary"))
    target_vocab = Vocabulary.load(resolve_inside(path, config["target"]["vocabulary"],
                                                  "config.json: target.vocabulary"))
    needed_source = ["pad", "unk"] + [t for t, flag in (("bos", "add_bos"), ("eos", "add_eos"))
                                      if config["source"][flag]]
    source_vocab.require(specials, needed_source, "source")
    target_vocab.require(specials, ["bos", "eos", "unk"], "target")
    tensors, _ = read_safetensors(resolve_inside(path, WEIGHTS_FILE, "weights file"))
    check_tensors(config, tensors, len(source_vocab), len(target_vocab),
                  where=os.path.join(path, WEIGHTS_FILE))
    return ModelFiles(path, config, tensors, source_vocab, target_vocab)


def write_model_dir(path: str, config: dict, tensors: dict[str, np.ndarray],
                    source_vocab: list[str], target_vocab: list[str]) -> None:
    """Validate against the schema, then write config, weights and vocabularies.

    Each file is written atomically, and nothing is written unless validation passes.
    """
    config = dict(config)
    config.setdefault("format", FORMAT_NAME)
    config.setdefault("format_version", FORMAT_VERSION)
    normalized = normalize_config(config)
    # float32, except int8 matrices and their scales (rnnsearch.quantize)
    tensors = {name: value if isinstance(value, np.ndarray) and value.dtype == np.int8
               else np.asarray(value, dtype=np.float32) for name, value in tensors.items()}
    check_tensors(normalized, tensors, len(source_vocab), len(target_vocab),
                  where="tensors to write")
    check_finite(tensors, where="tensors to write")
    source = Vocabulary(list(source_vocab), where="source vocabulary")
    target = Vocabulary(list(target_vocab), where="target vocabulary")
    for vocab in (source, target):
        vocab.check_encodable()
    os.makedirs(path, exist_ok=True)
    source.save(os.path.join(path, normalized["source"]["vocabulary"]))
    target.save(os.path.join(path, normalized["target"]["vocabulary"]))
    write_safetensors(os.path.join(path, WEIGHTS_FILE), tensors,
                      metadata={"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION)})
    # config.json last: a directory with a config is a complete model
    with atomic_write(os.path.join(path, CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump(normalized, f, indent=2, ensure_ascii=False)
        f.write("\n")
