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


def describe(path: str) -> str:
    files = load_model_dir(path)
    c = files.config
    enc, dec, att, bridge = c["encoder"], c["decoder"], c["attention"], c["bridge"]
    scales = scale_names(files.tensors)
    params = sum(int(t.size) for name, t in files.tensors.items() if name not in scales)
    size = os.path.getsize(os.path.join(path, WEIGHTS_FILE))
    direction = f"bidirectional ({enc['merge']})" if enc["bidirectional"] else "unidirectional"
    lines = [
        f"model:      {os.path.abspath(path)}",
        f"encoder:    {enc['num_layers']} x {enc['cell']} {enc['hidden_size']}, {direction}"
        f"{', residual' if enc['residual'] else ''}"
        f"{', ' + enc['stacking'] + ' stacks' if enc['stacking'] != 'layerwise' else ''}"
        f"{_deep(enc)}; embeddings {enc['embedding_size']}",
        f"bridge:     {bridge['type']}",
        "attention:  " + ("none" if att is None else
                           f"{att['type']} {att['score']}"
                           + (f" (size {att['size']})" if att.get("size") else "")),
        f"decoder:    {dec['type']}, {dec['num_layers']} x {dec['cell']} {dec['hidden_size']}"
        f"{_deep(dec)}; embeddings {dec['embedding_size']}"
        + (f"; {dec['base_cell_depth']} cells in layer 0" if dec["type"] == "conditional" else "")
        + (f"; readout {dec['readout']}" if dec["type"] in ("bahdanau", "conditional") else "")
        + (f"; input feeding {'on' if dec['input_feeding'] else 'off'}" if dec["type"] == "luong"
           else ""),
        f"vocabulary: source {len(files.source_vocab)}, target {len(files.target_vocab)}",
        f"tokenizer:  source {_tokenizer(c['source'])}; target {_tokenizer(c['target'])}",
        "decoding:   " + ", ".join(f"{k} {v}" for k, v in c["decoding"].items()
                                   if k != "suppress_tokens" or v),
        f"parameters: {params:,} ({size / 1e6:.1f} MB of weights"
        + (f"; {len(scales)} matrices int8 with per-row scales)" if scales else ")"),
    ]
    return "\n".join(lines)
