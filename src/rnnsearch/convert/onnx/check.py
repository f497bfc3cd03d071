"""The ONNX converter's final check: the converted model, run in NumPy (verify.py), must
reproduce the ONNX graphs' memory, initial states, attention weights, new states and
log-probabilities on the probe inputs."""
from __future__ import annotations

import numpy as np

from ...errors import ModelError
from .graph import Graph, plain
from .one_hot import token_ids
from .verify import Reference, log_softmax


def _close(ours, theirs, what: str) -> None:
    a = np.asarray(ours, np.float64)
    b = np.asarray(theirs, np.float64)
    if a.shape != b.shape:
        raise ModelError(f"the converted model does not reproduce the ONNX graphs: {what} has "
                         f"shape {list(a.shape)} here and {list(b.shape)} in the graph")
    if not np.allclose(a, b, rtol=1e-3, atol=1e-4):
        raise ModelError(f"the converted model does not reproduce the ONNX graphs: {what} "
                         f"differs by up to {float(np.max(np.abs(a - b))):.3g}. The graph uses "
                         "a pattern the converter misreads; please report it")


def _row(g: Graph, name: str, row: int) -> np.ndarray:
    return g.canon(name)[row, :, 0, :]


def verify(g: Graph, config: dict, tensors: dict, enc, dec, src_ids, links: dict,
           zeros: set) -> None:
    ref = Reference(config, tensors)
    memory, finals = ref.encode(np.asarray(src_ids, dtype=np.int64))
    onnx_memory = None
    if dec.values is not None:
        onnx_memory = g.canon(dec.values)[0]
        _close(memory, onnx_memory, "the memory (encoder outputs)")
    initial = ref.bridge(memory, finals)
    for layer in range(len(dec.layers)):
        for i, keys, what in ((0, dec.h_keys, "hidden"), (1, dec.c_keys, "cell")):
            key = keys[layer]
            if key is None:
                continue
            _, name, row = key
            if plain(name) in links:
                _close(initial[layer][i], _row(g, "encoder/" + links[plain(name)], row),
                       f"the initial {what} state of decoder layer {layer}")
    tokens = np.asarray(g.value(dec.token))
    if np.issubdtype(tokens.dtype, np.floating):   # one-hot vectors: the ids they spell
        tokens = token_ids(tokens)
    tokens = tokens.reshape(-1).astype(np.int64)
    states = []
    for layer in range(len(dec.layers)):
        h = _row(g, dec.h_keys[layer][1], dec.h_keys[layer][2])
        c = _row(g, dec.c_keys[layer][1], dec.c_keys[layer][2]) if dec.c_keys[layer] else None
        states.append((h, c))
    feed = _row(g, dec.feed_key[1], dec.feed_key[2]) if dec.feed_key else None
    logits, new, _, attention = ref.step(tokens, states, feed,
                                         onnx_memory if onnx_memory is not None else memory)
    for layer, cell in enumerate(dec.layers):
        _close(new[layer][0], g.canon(sorted(cell.h_new)[-1])[0, :, 0, :],
               f"the new hidden state of decoder layer {layer}")
    if attention is not None:
        _close(attention, g.canon(dec.attention_weights, feature=False)[0, :, :, 0],
               "the attention weights")
    theirs = g.canon(dec.logits)[0, :, 0, :]
    _close(log_softmax(logits), log_softmax(theirs), "the log-probabilities")
