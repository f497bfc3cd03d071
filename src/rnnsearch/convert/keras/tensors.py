"""A Plan (mapping.py) -> the canonical config sections and tensors: gate orders converted,
the Concatenate feeding the attentional or output layer re-ordered to the canonical [c; s],
and Keras' attention layers expressed as canonical scores.
"""
from __future__ import annotations

import numpy as np

from ...errors import ModelError
from ..common import layouts
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


def _embedding(layer: Layer, weights: list, path: str) -> np.ndarray:
    if len(weights) != 1 or np.asarray(weights[0]).ndim != 2:
        raise ModelError(f"{path}: layer '{layer.name}' (Embedding): expected one 2-D "
                         "embedding matrix in the file")
    return np.asarray(weights[0], np.float32)


def build(plan: Plan) -> tuple[dict, dict]:
    """The encoder, bridge, attention and decoder sections of config.json, and the tensors."""
    enc, dec = plan.encoder, plan.decoder
    tensors: dict[str, np.ndarray] = {}
    return_config = {}
    src_emb = _embedding(plan.source_embedding, plan.arrays[plan.source_embedding.name],
                         plan.path)
    tgt_emb = _embedding(plan.target_embedding, plan.arrays[plan.target_embedding.name],
                         plan.path)
    tensors["encoder.embedding.weight"] = src_emb
    tensors["decoder.embedding.weight"] = tgt_emb
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
        raise ModelError(f"{plan.path}: target vocabulary sizes disagree: the decoder Embedding "
                         f"'{plan.target_embedding.name}' has input_dim {vt} but the output "
                         f"layer '{out_layer.name}' has {out_kernel.shape[1]} units")

    def to_cs(kernel: np.ndarray, who: Layer) -> np.ndarray:
        """Dense kernel [in, out] reading the Concatenate parts -> weight [out, D_m + H_d]
        reading [c; s] (the canonical order); parts the model does not read get zeros."""
        widths = {"context": dm, "state": hd}
        need = sum(widths[p] for p in plan.parts)
        if kernel.shape[0] != need:
            raise ModelError(f"{plan.path}: layer '{who.name}': kernel has {kernel.shape[0]} "
                             f"inputs; the concatenated {' + '.join(plan.parts)} is {need} wide")
        weight = np.zeros((kernel.shape[1], dm + hd), np.float32)
        offset = 0
        for part in plan.parts:
            start = 0 if part == "context" else dm
            weight[:, start:start + widths[part]] = kernel[offset:offset + widths[part]].T
            offset += widths[part]
        return weight

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
            tensors["decoder.attentional.weight"] = to_cs(kernel, layer)
            if bias is not None:
                tensors["decoder.attentional.bias"] = bias
            tensors["decoder.output.weight"] = np.ascontiguousarray(out_kernel.T)
        else:
            decoder_cfg["attentional_layer"] = False
            tensors["decoder.output.weight"] = to_cs(out_kernel, out_layer)
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
    if hd != dm:
        raise ModelError(f"{plan.path}: layer '{layer.name}' ({layer.class_name}): query "
                         f"width {hd} and value width {dm} differ")
    if kind == "dot":
        if use_scale:
            tensors["attention.scale"] = arrays[0].reshape(1)
        return {"score": "dot"}
    if kind == "additive":   # AdditiveAttention: sum(scale * tanh(q + k))
        if use_scale:
            tensors["attention.v"] = arrays[0].reshape(dm)
        return {"score": "additive", "query_projection": False, "key_projection": False}
    # Attention(score_mode="concat"): w * sum(tanh(scale * (q + k)))
    weight = float(arrays[-1].reshape(()))
    tensors["attention.v"] = np.full((dm,), weight, np.float32)
    if not use_scale:
        return {"score": "additive", "query_projection": False, "key_projection": False}
    scale = float(arrays[0].reshape(()))
    tensors["attention.query.weight"] = np.eye(dm, hd, dtype=np.float32) * scale
    tensors["attention.key.weight"] = np.eye(dm, dm, dtype=np.float32) * scale
    return {"score": "additive", "size": dm, "query_projection": True, "key_projection": True}
