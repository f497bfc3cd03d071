"""Marian's files: the weights (.npz with `special:model.yml` inside), the model options (that
YAML, or model.npz.yml beside the weights), the decoder options (model.npz.decoder.yml) and
the vocabularies (.yml/.json maps, plain text, or SentencePiece .spm)."""
from __future__ import annotations

import os

import numpy as np

from ... import npy_files
from ...errors import ModelError

MODEL_YML_ITEM = "special:model.yml"
# Marian's required tokens and the names Nematus dictionaries give ids 0 and 1
EOS, UNK = "</s>", "<unk>"
NEMATUS_EOS, NEMATUS_UNK = "eos", "UNK"


def _yaml():
    try:
        import yaml
    except ImportError as e:  # pragma: no cover - the marian extra installs it
        raise ModelError("reading Marian models needs PyYAML: pip install 'rnnsearch[marian]'"
                         ) from e
    return yaml


def read_npz(path: str) -> dict[str, np.ndarray]:
    """Every array of a Marian .npz (rnnsearch.npy_files: no pickles, sizes checked
    before allocating, a corrupt archive a ModelError naming the file)."""
    if not os.path.isfile(path):
        raise ModelError(f"Marian model not found: {path}")
    return npy_files.read_npz(path, path)


def _parse_yaml(text: str, where: str) -> dict:
    yaml = _yaml()
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ModelError(f"{where}: cannot parse YAML: {e}") from e
    if not isinstance(value, dict):
        raise ModelError(f"{where}: expected a YAML mapping of options")
    return value


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError(f"cannot read {path}: {e}") from e


def model_options(items: dict, npz_path: str, yml_path: str | None = None) -> tuple[dict, str]:
    """The model's options and where they came from: `yml_path` if given, else the YAML
    Marian stores inside the .npz, else model.npz.yml beside it."""
    if yml_path:
        return _parse_yaml(_read_text(yml_path), yml_path), yml_path
    if MODEL_YML_ITEM in items:
        raw = np.asarray(items[MODEL_YML_ITEM]).tobytes().rstrip(b"\0")
        where = f"{npz_path}: {MODEL_YML_ITEM}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ModelError(f"{where}: not UTF-8 text") from e
        return _parse_yaml(text, where), where
    beside = npz_path + ".yml"
    if os.path.isfile(beside):
        return _parse_yaml(_read_text(beside), beside), beside
    raise ModelError(f"{npz_path}: no {MODEL_YML_ITEM} inside and no {beside} beside it "
                     "(pass --model-config)")


def decoder_options(npz_path: str, yml_path: str | None = None) -> tuple[dict, str | None]:
    """marian-decoder's options saved with the model (model.npz.decoder.yml), or {}."""
    path = yml_path or npz_path + ".decoder.yml"
    if not os.path.isfile(path):
        if yml_path:
            raise ModelError(f"decoder options not found: {yml_path}")
        return {}, None
    return _parse_yaml(_read_text(path), path), path


def resolve_vocab_paths(decoder: dict, decoder_path: str | None) -> list[str]:
    """The vocabularies a decoder.yml names: relative to the YAML's directory (Marian with
    relative-paths), the file of that name beside the YAML (a model moved since training),
    else as written."""
    vocabs = decoder.get("vocabs")
    if not isinstance(vocabs, list) or len(vocabs) != 2 or \
            not all(isinstance(v, str) for v in vocabs):
        raise ModelError(f"{decoder_path or 'decoder options'}: expected 'vocabs' with a source "
                         "and a target vocabulary (or pass --vocabs SRC TGT)")
    base = os.path.dirname(os.path.abspath(decoder_path)) if decoder_path else ""
    paths = []
    for vocab in vocabs:
        candidates = [os.path.join(base, vocab), os.path.join(base, os.path.basename(vocab))]
        paths.append(next((c for c in candidates if os.path.isfile(c)), vocab))
    return paths


def _ordered(mapping: dict, path: str) -> list[str]:
    """Tokens by id from a token -> id map; every id 0..n-1 exactly once."""
    by_id: dict[int, str] = {}
    for token, value in mapping.items():
        try:
            index = int(value)
        except (TypeError, ValueError):
            raise ModelError(f"{path}: id {value!r} of token {token!r} is not an integer"
                             ) from None
        if index < 0:
            raise ModelError(f"{path}: negative id {index} for token {token!r}")
        if index in by_id:
            raise ModelError(f"{path}: id {index} is given to {by_id[index]!r} and {token!r}")
        by_id[index] = str(token)
    missing = [i for i in range(len(by_id)) if i not in by_id]
    if missing:
        raise ModelError(f"{path}: ids are not 0..{len(by_id) - 1}: id {missing[0]} is missing")
    return [by_id[i] for i in range(len(by_id))]


def read_vocabulary(path: str) -> tuple[list[str], str]:
    """(tokens by id, kind) for a Marian vocabulary: 'yml' (a YAML or JSON token -> id map),
    'spm' (a SentencePiece model) or 'text' (one token per line)."""
    if not os.path.isfile(path):
        raise ModelError(f"Marian vocabulary not found: {path}")
    lower = path.lower()
    if lower.endswith(".spm"):
        from .sentencepiece_vocab import pieces
        return pieces(path), "spm"
    if lower.endswith((".yml", ".yaml", ".json")):
        yaml = _yaml()
        try:
            # every scalar a string, as yaml-cpp reads Marian's keys (true, 1, ~ are tokens)
            mapping = yaml.load(_read_text(path), Loader=yaml.BaseLoader)
        except yaml.YAMLError as e:
            raise ModelError(f"{path}: cannot parse the vocabulary: {e}") from e
        if not isinstance(mapping, dict) or not mapping:
            raise ModelError(f"{path}: expected a non-empty map of token: id")
        return _ordered(mapping, path), "yml"
    lines = _read_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or any(line == "" for line in lines):
        raise ModelError(f"{path}: a Marian text vocabulary has one non-empty token per line")
    if len(set(lines)) != len(lines):
        raise ModelError(f"{path}: a token appears twice")
    return lines, "text"


def special_ids(tokens: list[str], kind: str, path: str) -> tuple[int, int]:
    """(EOS id, UNK id) as Marian finds them: </s> and <unk>, or for YAML dictionaries the
    Nematus convention (id 0 'eos' or empty, id 1 'UNK' or empty)."""
    found = []
    for name, nematus, default in ((EOS, NEMATUS_EOS, 0), (UNK, NEMATUS_UNK, 1)):
        if kind == "yml" and default < len(tokens) and tokens[default] in ("", nematus):
            found.append(default)
        elif name in tokens:
            found.append(tokens.index(name))
        else:
            raise ModelError(f"{path}: the vocabulary has no {name} entry, which Marian requires")
    return found[0], found[1]
