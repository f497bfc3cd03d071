"""Models that read one-hot vectors instead of token ids (the Keras `lstm_seq2seq` example,
its ONNX exports): what the Keras and ONNX converters write for them.

A one-hot row e_i times the first layer's matrix W is column i of W: an embedding lookup.
So the converted model gets the identity as its embedding (eye(V), E = V) and keeps W in
its first recurrent layer; it then decodes token ids (docs/model-format.md, source.kind
`one_hot`).

The frameworks' character tables give every one of the V positions a character, and have
no unknown token; rnnsearch needs one on both sides (`special_tokens.unk`). It is added as
entry V, the all-zero vector (a character the table lacks, one-hot encoded, is all zeros):
an embedding row of zeros on both sides, and on the target an output row the search never
picks (zero weights, a logit of NEVER, listed in `target.suppress_tokens`), which leaves
every other token's log-probability unchanged: exp(NEVER - max) is 0 in float32.
"""
from __future__ import annotations

import numpy as np

UNKNOWN = "<unk>"
NEVER = -1e9   # the unknown target entry's logit: finite (the engine refuses inf), never chosen


def identity_embedding(width: int) -> np.ndarray:
    """[V, V]: row i is the one-hot vector e_i, so the first layer reads W e_i."""
    return np.eye(width, dtype=np.float32)


def add_unknown_entry(tensors: dict, source_tokens: list[str] | None,
                      target_tokens: list[str], name: str = UNKNOWN) -> list[str]:
    """Append the all-zero vector as the unknown token `name` to the one-hot vocabularies
    (None: that side is not one-hot, or already has it) and their tensors, in place;
    returns the target tokens to suppress."""
    if source_tokens is not None and name not in source_tokens:
        _append_row(tensors, "encoder.embedding.weight", 0.0)
        source_tokens.append(name)
    if name in target_tokens:
        return []
    _append_row(tensors, "decoder.embedding.weight", 0.0)
    _append_row(tensors, "decoder.output.weight", 0.0)
    rows = tensors["decoder.output.weight"].shape[0]
    bias = tensors.get("decoder.output.bias")
    bias = np.zeros(rows - 1, np.float32) if bias is None else np.asarray(bias, np.float32)
    tensors["decoder.output.bias"] = np.append(bias, np.float32(NEVER))
    target_tokens.append(name)
    return [name]


def _append_row(tensors: dict, name: str, value: float) -> None:
    matrix = np.asarray(tensors[name], np.float32)
    tensors[name] = np.vstack([matrix, np.full((1, matrix.shape[1]), value, np.float32)])
