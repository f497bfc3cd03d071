"""Load and write model directories (docs/model-format.md)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from .errors import ModelError
from .model_kind import describe_directory, describe_file
from .model_spec import (FORMAT_NAME, FORMAT_VERSION, check_finite, check_tensors,
                         normalize_config)
from .safe_files import load_json, require_regular_file, resolve_inside
from .source_options import check_vocabulary_size
from .safetensors_io import atomic_write, read_safetensors, write_safetensors
from .vocab import Vocabulary

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class ModelFiles:
    path: str
    config: dict                     # normalized: every default filled in
    tensors: dict[str, np.ndarray]   # float32 (or int8 + scales), memory-mapped
    source_vocab: Vocabulary | None  # None: a features model reads no tokens
    target_vocab: Vocabulary


def load_model_dir(path: str) -> ModelFiles:
    """Read and validate everything; ModelError names the file and field at fault (or,
    for another kind of model or a file, what it is and how to convert it). Every file is
    read from inside the directory, as a bounded regular file (docs/security.md)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"model path must be a string, got {type(path).__name__}")
    path = os.fspath(path)
    try:
        is_file, is_dir = os.path.isfile(path), os.path.isdir(path)
    except ValueError:   # NUL in the path
        is_file = is_dir = False
    if is_file:
        raise ModelError(f"{path} is not a model directory: it is {describe_file(path)}")
    if not is_dir:
        raise ModelError(f"model directory not found: {path!r}")
    if not os.path.lexists(os.path.join(path, CONFIG_FILE)):
        raise ModelError(f"{path}: no {CONFIG_FILE}" + _what_it_is(path))
    raw = load_json(resolve_inside(path, CONFIG_FILE, "config file"), "config file")
    if isinstance(raw, dict) and raw.get("format") != FORMAT_NAME and describe_directory(path):
        raise ModelError(f"{path} is not an rnnsearch model directory: it is "
                         f"{describe_directory(path)}")
    config = normalize_config(raw)
    specials = config["special_tokens"]
    source_vocab = None
    if config["source"]["kind"] != "features":
        source_vocab = Vocabulary.load(resolve_inside(path, config["source"]["vocabulary"],
                                                      "config.json: source.vocabulary"))
        needed_source = ["pad", "unk"] + [t for t, flag in (("bos", "add_bos"),
                                                            ("eos", "add_eos"))
                                          if config["source"][flag]]
        source_vocab.require(specials, needed_source, "source")
        check_vocabulary_size(config, len(source_vocab), source_vocab.where)
    target_vocab = Vocabulary.load(resolve_inside(path, config["target"]["vocabulary"],
                                                  "config.json: target.vocabulary"))
    target_vocab.require(specials, ["bos", "eos", "unk"], "target")
    for side in ("source", "target"):
        if config[side]["tokenizer_model"] is not None:
            tokenizer_file(path, config, side)
    tensors, _ = read_safetensors(resolve_inside(path, WEIGHTS_FILE, "weights file"))
    check_tensors(config, tensors, len(source_vocab) if source_vocab else None,
                  len(target_vocab), where=os.path.join(path, WEIGHTS_FILE))
    return ModelFiles(path, config, tensors, source_vocab, target_vocab)


def tokenizer_file(path: str, config: dict, side: str) -> str:
    """The path of `side`'s tokenizer file (config `tokenizer_model`); ModelError when it is
    missing or resolves outside the model directory (a symbolic link)."""
    name = config[side]["tokenizer_model"]
    if not os.path.lexists(os.path.join(path, name)):
        raise ModelError(f"{path}: the {side} tokenizer file {name!r} "
                         f"(config.json {side}.tokenizer_model) is missing")
    full = resolve_inside(path, name, f"config.json: {side}.tokenizer_model")
    return require_regular_file(full, f"{side} tokenizer file")


def _what_it_is(path: str) -> str:
    described = describe_directory(path)
    return f"; it is {described}" if described else ""


def write_model_dir(path: str, config: dict, tensors: dict[str, np.ndarray],
                    source_vocab: list[str] | None, target_vocab: list[str],
                    files: dict[str, str] | None = None) -> None:
    """Validate against the schema, then write config, weights and vocabularies, and copy
    `files` ({name inside the directory: path to copy}, e.g. tokenizer models from
    rnnsearch.tokenizers.tokenizer_section) into it.

    Each file is written atomically, and nothing is written unless validation passes. A
    features model (source.kind 'features') has no source vocabulary: pass None.
    """
    config = dict(config)
    config.setdefault("format", FORMAT_NAME)
    config.setdefault("format_version", FORMAT_VERSION)
    normalized = normalize_config(config)
    # float32, except int8 matrices and their scales (rnnsearch.quantize)
    tensors = {name: value if isinstance(value, np.ndarray) and value.dtype == np.int8
               else np.asarray(value, dtype=np.float32) for name, value in tensors.items()}
    check_vocabulary_size(normalized, len(source_vocab) if source_vocab else None,
                          "source vocabulary to write")
    check_tensors(normalized, tensors, len(source_vocab) if source_vocab else None,
                  len(target_vocab), where="tensors to write")
    check_finite(tensors, where="tensors to write")
    source = Vocabulary(list(source_vocab), where="source vocabulary") if source_vocab \
        else None
    target = Vocabulary(list(target_vocab), where="target vocabulary")
    for vocab in (source, target):
        if vocab is not None:
            vocab.check_encodable()
    files = dict(files or {})
    for side in ("source", "target"):
        name = normalized[side]["tokenizer_model"]
        if name is not None and name not in files and \
                not os.path.isfile(os.path.join(path, name)):
            raise ModelError(f"config {side}.tokenizer_model = {name!r}: no such file given "
                             "(pass it in files=)")
    contents = {}
    for name, source_path in files.items():
        try:
            with open(source_path, "rb") as f:
                contents[name] = f.read()
        except OSError as e:
            raise ModelError(f"cannot read {source_path} (to copy as {name}): {e}") from e
    os.makedirs(path, exist_ok=True)
    for name, data in contents.items():
        with atomic_write(os.path.join(path, name), "wb") as f:
            f.write(data)
    if source is not None:
        source.save(os.path.join(path, normalized["source"]["vocabulary"]))
    target.save(os.path.join(path, normalized["target"]["vocabulary"]))
    write_safetensors(os.path.join(path, WEIGHTS_FILE), tensors,
                      metadata={"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION)})
    # config.json last: a directory with a config is a complete model
    with atomic_write(os.path.join(path, CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump(normalized, f, indent=2, ensure_ascii=False)
        f.write("\n")
