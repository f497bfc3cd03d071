"""The reference's source stage and time reshaping (docs/model-format.md, "source" and
"Encoders over features"): token ids or one-hot vectors through the embedding, feature
frames through the optional input projection, and the subsampling between layers, written
the way the implementations it follows write it (a reshape for the pyramid, x[:, ::f] for
ESPnet's strides)."""
from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda x: x}


def source_modules(config: dict, vocab_size: int | None):
    """(embedding, input projection, its activation): ids / one_hot have an nn.Embedding;
    features an nn.Linear (or None) and its activation."""
    src, enc = config["source"], config["encoder"]
    if src["kind"] != "features":
        return nn.Embedding(vocab_size, enc["embedding_size"]), None, ACTIVATIONS["identity"]
    projection = enc["input_projection"]
    if projection is None:
        return None, None, ACTIVATIONS["identity"]
    return (None, nn.Linear(src["feature_size"], projection["size"]),
            ACTIVATIONS[projection["activation"]])


def subsample(x: torch.Tensor, lengths: torch.Tensor, factor: int, mode: str,
              at_input: bool):
    """x [B, S, D] -> (x [B, S', D'], lengths [B]). concat: f consecutive positions side
    by side, a last incomplete group dropped; stride: x[:, ::f], with ESPnet's lengths
    (ceil(L / f) at the input, (L + 1) // f after a layer)."""
    if factor == 1:
        return x, lengths
    B, S, D = x.shape
    if mode == "concat":
        groups = S // factor
        x = x[:, :groups * factor].reshape(B, groups, factor * D)
        return x, lengths // factor
    x = x[:, ::factor]
    lengths = (lengths + factor - 1) // factor if at_input else (lengths + 1) // factor
    return x, lengths
