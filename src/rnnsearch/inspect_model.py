"""`rnnsearch inspect`: a human-readable summary of a model directory."""
from __future__ import annotations

import os

from .model_dir import WEIGHTS_FILE, load_model_dir
from .model_spec import scale_names


def _deep(section: dict) -> str:
    """Deep transition and layer normalisation of a section's GRUs, if any."""
    parts = [f"cell depth {section['cell_depth']}"] if section["cell_depth"] > 1 else []
    if section["layer_norm"] != "none":
        parts.append(f"layer norm {section['layer_norm']}")
    return "".join(f", {p}" for p in parts)


def _tokenizer(side: dict) -> str:
    text = side["tokenizer"]
    if side["tokenizer_model"]:
        text += f" ({side['tokenizer_model']})"
    if side["tokenizer_guessed"]:
        text += " [GUESSED by the converter: the export did not record it; check it]"
    return text


def _source(c: dict) -> str:
    src, enc = c["source"], c["encoder"]
    if src["kind"] == "ids":
        return "token ids"
    if src["kind"] == "one_hot":
        return f"one_hot vectors of {src['feature_size']} (read as token ids)"
    text = f"features: frames [T, {src['feature_size']}]"
    if enc["input_projection"]:
        projection = enc["input_projection"]
        text += f", projected to {projection['size']} ({projection['activation']})"
    return text


def _encoder(enc: dict) -> str:
    if not enc["num_layers"]:
        text = "none (the source stage's output is the memory)"
    else:
        direction = f"bidirectional ({enc['merge']})" if enc["bidirectional"] else \
            "unidirectional"
        text = f"{enc['num_layers']} x {enc['cell']} {enc['hidden_size']}, {direction}" \
            f"{', residual' if enc['residual'] else ''}" \
            f"{', ' + enc['stacking'] + ' stacks' if enc['stacking'] != 'layerwise' else ''}" \
            f"{_deep(enc)}"
    if enc["embedding_size"]:
        text += f"; embeddings {enc['embedding_size']}"
    if enc["subsample"]:
        text += f"; subsampling {enc['subsample_mode']} " + \
            "x".join(str(f) for f in enc["subsample"])
    if enc["projection"]:
        text += f"; projection {enc['projection']['size']} after each layer"
    return text


def describe(path: str) -> str:
    files = load_model_dir(path)
    c = files.config
    enc, dec, att, bridge = c["encoder"], c["decoder"], c["attention"], c["bridge"]
    scales = scale_names(files.tensors)
    params = sum(int(t.size) for name, t in files.tensors.items() if name not in scales)
    size = os.path.getsize(os.path.join(path, WEIGHTS_FILE))
    source_vocab = len(files.source_vocab) if files.source_vocab else "none"
    lines = [
        f"model:      {os.path.abspath(path)}",
        f"source:     {_source(c)}",
        f"encoder:    {_encoder(enc)}",
        f"bridge:     {bridge['type']}",
        "attention:  " + ("none" if att is None else
                           f"{att['type']} {att['score']}"
                           + (f" (size {att['size']})" if att.get("size") else "")
                           + (f", {att['score_activation']} scores"
                              if att["score_activation"] != "tanh" else "")
                           + (", gate per dimension" if att["gate_per_dimension"] else
                              ", gate" if att["gate"] else "")),
        f"decoder:    {dec['type']}, {dec['num_layers']} x {dec['cell']} {dec['hidden_size']}"
        f"{_deep(dec)}; embeddings {dec['embedding_size']}"
        + (f"; {dec['base_cell_depth']} cells in layer 0" if dec["type"] == "conditional" else "")
        + (f"; readout {dec['readout']}" if dec["type"] in ("bahdanau", "conditional") else "")
        + (f"; input feeding {'on' if dec['input_feeding'] else 'off'}" if dec["type"] == "luong"
           else ""),
        f"vocabulary: source {source_vocab}, target {len(files.target_vocab)}",
        f"tokenizer:  source {_tokenizer(c['source'])}; target {_tokenizer(c['target'])}",
        "decoding:   " + ", ".join(f"{k} {v}" for k, v in c["decoding"].items()
                                   if k != "suppress_tokens" or v),
        f"parameters: {params:,} ({size / 1e6:.1f} MB of weights"
        + (f"; {len(scales)} matrices int8 with per-row scales)" if scales else ")"),
    ]
    kernels = _kernels()
    if kernels:
        lines.append(f"kernels:    {kernels}")
    return "\n".join(lines)


def _kernels() -> str | None:
    """The matrix kernels each compute_type runs on this CPU (None without the compiled
    engine: inspecting a model does not need it)."""
    try:
        from ._engine import kernel_isa
    except ImportError:
        return None
    from .translator import COMPUTE_TYPES
    return ", ".join(f"{compute_type} {kernel_isa(compute_type)}"
                     for compute_type in COMPUTE_TYPES) + " (compute_type: this CPU's choice)"
