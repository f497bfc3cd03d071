"""Vocabulary maps (docs/vmap.md): which target tokens a sentence may produce, from its
source n-grams, so that decoding computes the output layer over those tokens only
(CTranslate2's `use_vmap`, Marian's lexical shortlists).

The file is CTranslate2's: one rule per line, `source n-gram<TAB>target tokens`, tokens
separated by single spaces; a line with an empty n-gram lists target tokens that are
always candidates; a later rule for the same n-gram replaces an earlier one; target tokens
the vocabulary lacks count as UNK. The model's UNK, BOS and EOS are always candidates, and
so are a sentence's target prefix tokens.

A map read from a model directory is untrusted input (docs/security.md): the file is a
regular file inside the folder, bounded in size; n-grams are bounded in length; a line
that is not a rule is a ModelError naming the file and the line."""
from __future__ import annotations

import os

import numpy as np

from .errors import ModelError
from .limits import MAX_VMAP_BYTES, MAX_VMAP_ORDER, MAX_VMAP_RULES
from .safe_files import read_bytes, resolve_inside

VMAP_FILE = "vmap.txt"   # the optional map of a model directory (CTranslate2's name)


class VocabMap:
    """Parsed rules: for each n-gram (a tuple of source tokens), its target ids."""

    def __init__(self, rules: dict[tuple[str, ...], np.ndarray], always: np.ndarray,
                 where: str = "vocabulary map"):
        self.rules = rules
        self.always = always          # ascending target ids that are always candidates
        self.order = max((len(k) for k in rules), default=0)
        self.where = where

    def candidates(self, tokens: list[str], prefix_ids=()) -> np.ndarray:
        """The ascending target ids a sentence of these source tokens is decoded over."""
        found = [self.always, np.asarray(prefix_ids, dtype=np.intc)]
        rules, n = self.rules, len(tokens)
        for i in range(n):
            for h in range(1, min(self.order, n - i) + 1):
                ids = rules.get(tuple(tokens[i:i + h]))
                if ids is not None:
                    found.append(ids)
        return np.unique(np.concatenate(found)).astype(np.intc)


def fixed_ids(target_vocab, special_tokens: dict) -> list[int]:
    """The target UNK, BOS and EOS ids a map always keeps (UNK first), those the target
    vocabulary has."""
    return [target_vocab.ids[special_tokens[name]] for name in ("unk", "bos", "eos")
            if special_tokens[name] in target_vocab.ids]


def parse_vocab_map(data: bytes, target_ids: dict[str, int], fixed_ids, where: str
                    ) -> VocabMap:
    """Rules from the bytes of a map file; fixed_ids (UNK, BOS, EOS) are always
    candidates, unknown target tokens become fixed_ids[0] (UNK)."""
    unk = fixed_ids[0]
    rules: dict[tuple[str, ...], np.ndarray] = {}
    always = np.array(sorted(set(fixed_ids)), dtype=np.intc)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) > MAX_VMAP_RULES:
        raise ModelError(f"{where}: {len(lines)} lines; at most {MAX_VMAP_RULES} are read")
    for number, raw in enumerate(lines, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelError(f"{where}: line {number} is not UTF-8 text") from None
        line = line[:-1] if line.endswith("\r") else line
        if line == "":
            continue
        if "\t" not in line:
            raise ModelError(f"{where}: line {number}: expected 'source n-gram<TAB>target "
                             "tokens'; there is no TAB")
        key, _, targets = line.partition("\t")
        if "\t" in targets or "\0" in line:
            raise ModelError(f"{where}: line {number}: one TAB per line, and no NUL")
        ngram = tuple(key.split(" ")) if key else ()
        if "" in ngram:
            raise ModelError(f"{where}: line {number}: the source n-gram {key!r} has an "
                             "empty token (two spaces, or a space at an end)")
        if len(ngram) > MAX_VMAP_ORDER:
            raise ModelError(f"{where}: line {number}: a source n-gram of {len(ngram)} tokens; "
                             f"at most {MAX_VMAP_ORDER} are supported")
        ids = np.unique(np.array([target_ids.get(t, unk) for t in targets.split(" ") if t],
                                 dtype=np.intc))
        if ngram:
            rules[ngram] = ids
        else:
            always = np.union1d(np.array(sorted(set(fixed_ids)), dtype=np.intc),
                                ids).astype(np.intc)
    return VocabMap(rules, always, where)


def load_vocab_map(path: str, target_vocab, special_tokens: dict,
                   folder: str | None = None) -> VocabMap:
    """A map file for a model's target vocabulary (at most limits.MAX_VMAP_BYTES, a
    regular file; with `folder`, `path` is a name that must stay inside it)."""
    if folder is not None:
        path = resolve_inside(folder, path, "vocabulary map")
    data = read_bytes(path, "vocabulary map", MAX_VMAP_BYTES)
    return parse_vocab_map(data, target_vocab.ids, fixed_ids(target_vocab, special_tokens),
                           path)


def model_vocab_map(model_path: str, target_vocab, special_tokens: dict) -> VocabMap | None:
    """The model directory's vmap.txt, or None when it has none."""
    if not os.path.lexists(os.path.join(model_path, VMAP_FILE)):
        return None
    return load_vocab_map(VMAP_FILE, target_vocab, special_tokens, folder=model_path)


def call_candidates(use_vmap, model_map: VocabMap | None, model_path: str,
                    sources: list[list[str]], prefixes) -> list[np.ndarray] | None:
    """translate_batch's use_vmap (False/None: no map; True: the model directory's
    vmap.txt; or a VocabMap) as each sentence's candidate target ids, or None. sources:
    the tokens the model reads (truncated); prefixes: target prefix ids or None."""
    if use_vmap is None or use_vmap is False:
        return None
    if use_vmap is True:
        if model_map is None:
            raise ValueError(f"use_vmap: the model directory {model_path} has no {VMAP_FILE} "
                             "(build one with rnnsearch build-vmap)")
        use_vmap = model_map
    if not isinstance(use_vmap, VocabMap):
        raise TypeError(f"use_vmap must be a bool or a VocabMap, got {type(use_vmap).__name__}")
    prefixes = prefixes or [()] * len(sources)
    return [use_vmap.candidates(tokens, prefix) for tokens, prefix in zip(sources, prefixes)]


def write_vocab_map(path: str, rules, always=()) -> None:
    """Write rules (source n-gram tuple -> target tokens) as a map file, completely or not
    at all; `always`: the always-included target tokens (the empty n-gram's line)."""
    from .safetensors_io import atomic_write
    lines = [((), list(always))] if always else []
    lines += [(tuple(ngram), list(targets)) for ngram, targets in rules.items()]
    for ngram, targets in lines:
        for token in (*ngram, *targets):
            if not isinstance(token, str) or not token or \
                    any(c in token for c in " \t\n\r\0"):
                raise ValueError(f"token {token!r} cannot be written to a vocabulary map "
                                 "(empty, or holds a space, TAB, newline or NUL)")
    with atomic_write(path, "w", encoding="utf-8") as f:
        for ngram, targets in lines:
            f.write(" ".join(ngram) + "\t" + " ".join(targets) + "\n")
