"""A character task for one-hot models, laid out as the Keras example "character-level
recurrent sequence-to-sequence" (lstm_seq2seq) lays out its data: character tables
input_token_index / target_token_index (sorted characters, ids from 0), targets wrapped in
'\\t' (start) and '\\n' (end), one-hot arrays padded with ' ' to the longest text."""
from __future__ import annotations

import json
import os

import numpy as np

ALPHABET = "abcdefgh"


def texts(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Inputs of 2-6 letters; targets: the input reversed, between '\\t' and '\\n'."""
    rng = np.random.default_rng(seed)
    inputs = ["".join(rng.choice(list(ALPHABET), rng.integers(2, 7))) for _ in range(n)]
    return inputs, ["\t" + text[::-1] + "\n" for text in inputs]


def tables(input_texts, target_texts) -> tuple[dict, dict]:
    """The example's input_token_index / target_token_index (' ' included: it pads)."""
    input_characters = sorted(set("".join(input_texts)) | {" "})
    target_characters = sorted(set("".join(target_texts)) | {" "})
    return ({char: i for i, char in enumerate(input_characters)},
            {char: i for i, char in enumerate(target_characters)})


# the example's control characters as tokens a vocabulary file can hold
TOKEN_NAMES = {"\t": "<s>", "\n": "</s>", " ": "\u2581"}


def vocabulary_tokens(index: dict) -> list[str]:
    """A character table's entries, in id order, as vocabulary tokens (TOKEN_NAMES)."""
    return [TOKEN_NAMES.get(char, char) for char in sorted(index, key=index.get)]


def one_hot(text, index: dict, length: int | None = None) -> np.ndarray:
    """[length, V] float32 as the example fills it (padded with ' ' after the text)."""
    length = length or len(text)
    data = np.zeros((length, len(index)), np.float32)
    for t, char in enumerate(text):
        data[t, index[char]] = 1.0
    data[len(text):, index[" "]] = 1.0
    return data


def training_arrays(input_texts, target_texts, input_index, target_index):
    """encoder_input_data, decoder_input_data, decoder_target_data of the example."""
    n, ti = len(input_texts), max(map(len, input_texts))
    tt = max(map(len, target_texts))
    enc = np.stack([one_hot(t, input_index, ti) for t in input_texts])
    dec = np.stack([one_hot(t, target_index, tt) for t in target_texts])
    target = np.stack([one_hot(t[1:], target_index, tt) for t in target_texts])
    assert enc.shape[0] == dec.shape[0] == target.shape[0] == n
    return enc, dec, target


def write_tables(directory, input_index: dict, target_index: dict) -> tuple[str, str]:
    """The tables as the docs tell users to save them: json.dump of the dicts."""
    paths = []
    for name, index in (("input_token_index.json", input_index),
                        ("target_token_index.json", target_index)):
        path = os.path.join(str(directory), name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(index, f)
        paths.append(path)
    return paths[0], paths[1]
