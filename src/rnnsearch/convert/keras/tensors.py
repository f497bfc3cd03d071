"""A Plan (mapping.py) -> the canonical config sections and tensors: gate orders converted,
the Concatenate feeding the attentional or output layer re-ordered to the canonical [c; s],
and Keras' attention layers expressed as canonical scores.
"""
from __future__ import annotations

import numpy as np

from ...errors import ModelError
from ..common import layouts
from ..common.one_hot import identity_embedding
from .files import Layer
from .mapping import Plan
from .walker import Rnn


def _rnn_tensors(rnn: Rnn, prefix: str, tensors: dict) -> None:
    for direction, values in rnn.arrays.items():
        name = f"{prefix}.{direction}" if prefix.startswith("encoder") else prefix
        if rnn.cell == "lstm":
            convert = layouts.lstm_from_keras
            order = (layouts.KERAS_LSTM, layouts.CANONICAL_LSTM)
        else:
            convert = layouts.gru_from_keras
            order = (layouts.KERAS_GRU, layouts.CANONICAL_GRU)
        tensors[f"{name}.weight_ih"] = convert(values[0])
        tensors[f"{name}.weight_hh"] = convert(values[1])
        if len(values) > 2:
            bias = np.asarray(values[2], np.float32)
            if bias.ndim == 2:   # GRU reset_after: [input bias, recurrent bias]
                tensors[f"{name}.bias_ih"] = layouts.reorder_gates(bias[0], *order)
                tensors[f"{name}.bias_hh"] = layouts.reorder_gates(bias[1], *order)
            else:
                tensors[f"{name}.bias_ih"] = layouts.reorder_gates(bias, *order)


def _embedding(plan: Plan, side: str) -> np.ndarray:
    """The side's Embedding matrix, or the identity for one-hot vectors (common/one_hot.py)."""
    layer = plan.source_embedding if side == "source" else plan.target_embedding
    if layer is None:
        return identity_embedding(plan.vocabulary_size(side))
    weights, path = plan.arrays[layer.name], plan.path
    if len(weights) != 1 or np.asarray(weights[0]).ndim != 2:
        raise ModelError(f"{path}: layer '{layer.name}' (Embedding): expected one 2-D "
                         "embedding matrix in the file")
    return np.asarray(weights[0], np.float32)


def build(plan: Plan) -> tuple[dict, dict]:
    """The encoder, bridge, attention and decoder sections of config.json, and the tensors."""
    enc, dec = plan.encoder, plan.decoder
    tensors: dict[str, np.ndarray] = {}
    return_config = {}
    src_emb, tgt_emb = _embedding(plan, "source"), _embedding(plan, "target")
    tensors["encoder.embedding.weight"] = src_emb
    tensors["decoder.embedding.weight"] = tgt_emb
    tensors.update(plan.bridge_tensors)
    for i, rnn in enumerate(enc):
        _rnn_tensors(rnn, f"encoder.layers.{i}", tensors)
    for i, rnn in enumerate(dec):
        _rnn_tensors(rnn, f"decoder.layers.{i}", tensors)
    hd = dec[0].units
    dm = enc[0].units * (2 if enc[0].bidirectional and plan.merge == "concat" else 1)

    encoder_cfg = {"embedding_size": int(src_emb.shape[1]), "cell": enc[0].cell,
                   "hidden_size": enc[0].units, "num_layers": len(enc),
                   "bidirectional": enc[0].bidirectional, "merge": plan.merge,
                   "gru_reset_after": enc[0].reset_after}
    decoder_cfg = {"embedding_size": int(tgt_emb.shape[1]), "cell": dec[0].cell,
                   "hidden_size": hd, "num_layers": len(dec),
                   "gru_reset_after": dec[0].reset_after}

    out_layer, out_kernel, out_bias = plan.output
    vt = tgt_emb.shape[0]
    if out_kernel.shape[1] != vt:
        raise ModelError(f"{plan.path}: target vocabulary sizes disagree: "
                         f"{plan.describe_size('target')} but the output "
                         f"layer '{out_layer.name}' has {out_kernel.shape[1]} units")

    projection = plan.memory_projection
    context_width = projection[1].shape[1] if projection else dm   # what Keras' context is

    def to_cs(kernel: np.ndarray, bias, who: Layer):
        """Dense kernel [in, out] reading the Concatenate parts (and its bias) -> weight
        [out, D_m + H_d] reading [c; s] (the canonical order) and bias; parts the model does
        not read get zeros. A projected memory's context W c + b is folded in."""
        widths = {"context": context_width, "state": hd}
        need = sum(widths[p] for p in plan.parts)
        if kernel.shape[0] != need:
            raise ModelError(f"{plan.path}: layer '{who.name}': kernel has {kernel.shape[0]} "
                             f"inputs; the concatenated {' + '.join(plan.parts)} is {need} wide")
        weight = np.zeros((kernel.shape[1], dm + hd), np.float32)
        bias = None if bias is None else np.asarray(bias, np.float64)
        offset = 0
        for part in plan.parts:
            part_kernel = kernel[offset:offset + widths[part]].T.astype(np.float64)
            offset += widths[part]
            if part == "state":
                weight[:, dm:] = part_kernel
                continue
            if projection is None:
                weight[:, :dm] = part_kernel
                continue
            _, proj_kernel, proj_bias = projection   # context = c K + b
            weight[:, :dm] = part_kernel @ proj_kernel.T.astype(np.float64)
            if proj_bias is not None:
                shift = part_kernel @ proj_bias.astype(np.float64)
                bias = shift if bias is None else bias + shift
        return weight, None if bias is None else bias.astype(np.float32)

    if plan.attention is None:
        decoder_cfg["type"] = "none"
        attention_cfg = None
        if out_kernel.shape[0] != hd:
            raise ModelError(f"{plan.path}: layer '{out_layer.name}': expects "
                             f"{out_kernel.shape[0]} inputs, the decoder gives {hd}")
        tensors["decoder.output.weight"] = np.ascontiguousarray(out_kernel.T)
    else:
        decoder_cfg["type"] = "luong"
        decoder_cfg["input_feeding"] = False
        attention_cfg = _attention(plan, tensors, hd, dm)
        if plan.attentional is not None:
            layer, kernel, bias = plan.attentional
            decoder_cfg["attentional_layer"] = True
            decoder_cfg["attentional_size"] = int(kernel.shape[1])
            weight, bias = to_cs(kernel, bias, layer)
            tensors["decoder.attentional.weight"] = weight
            if bias is not None:
                tensors["decoder.attentional.bias"] = bias
            tensors["decoder.output.weight"] = np.ascontiguousarray(out_kernel.T)
        else:
            decoder_cfg["attentional_layer"] = False
            tensors["decoder.output.weight"], out_bias = to_cs(out_kernel, out_bias, out_layer)
    if out_bias is not None:
        tensors["decoder.output.bias"] = out_bias
    return_config.update({"encoder": encoder_cfg, "bridge": plan.bridge,
                          "attention": attention_cfg, "decoder": decoder_cfg})
    return return_config, tensors


def _attention(plan: Plan, tensors: dict, hd: int, dm: int) -> dict:
    layer = plan.attention
    arrays = [np.asarray(a, np.float32) for a in plan.arrays[layer.name]]
    use_scale = bool(layer.config.get("use_scale", False))
    kind = plan.attention_kind
    expected = int(use_scale) + int(kind == "concat")
    if len(arrays) != expected:
        raise ModelError(f"{plan.path}: layer '{layer.name}' ({layer.class_name}): expected "
                         f"{expected} weight array(s), found {len(arrays)}")
    projection = plan.memory_projection
    width = projection[1].shape[1] if projection else dm   # the keys Keras scores
    if hd != width:
        raise ModelError(f"{plan.path}: layer '{layer.name}' ({layer.class_name}): query "
                         f"width {hd} and value width {width} differ")
    # the keys as a linear map of the memory: identity, or the projection (W = K^T, b)
    key_w = np.eye(dm, dtype=np.float32) if projection is None else \
        np.ascontiguousarray(projection[1].T, dtype=np.float32)
    key_b = None if projection is None else projection[2]
    scale = float(arrays[0].reshape(())) if use_scale and kind != "additive" else 1.0
    if kind == "dot":
        if projection is None:
            if use_scale:
                tensors["attention.scale"] = arrays[0].reshape(1)
            return {"score": "dot"}
        # q·(s (W h + b)): the "general" score with the projection as its key layer
        tensors["attention.key.weight"] = key_w * np.float32(scale)
        if key_b is not None:
            tensors["attention.key.bias"] = np.asarray(key_b, np.float32) * np.float32(scale)
        return {"score": "general"}
    if kind == "additive":   # AdditiveAttention: sum(scale * tanh(q + k))
        if use_scale:
            tensors["attention.v"] = arrays[0].reshape(width)
        if projection is None:
            return {"score": "additive", "query_projection": False, "key_projection": False}
    else:   # Attention(score_mode="concat"): w * sum(tanh(scale * (q + k)))
        tensors["attention.v"] = np.full((width,), float(arrays[-1].reshape(())), np.float32)
        if not use_scale and projection is None:
            return {"score": "additive", "query_projection": False, "key_projection": False}
        if use_scale:
            tensors["attention.query.weight"] = np.eye(width, hd, dtype=np.float32) * \
                np.float32(scale)
    tensors["attention.key.weight"] = key_w * np.float32(scale)
    if key_b is not None:
        tensors["attention.key.bias"] = np.asarray(key_b, np.float32) * np.float32(scale)
    return {"score": "additive", "size": width, "key_projection": True,
            "query_projection": "attention.query.weight" in tensors}
