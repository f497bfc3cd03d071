"""int8 weights in the model file (`rnnsearch convert --quantize int8`).

Every matrix the engine multiplies by (all 2-D tensors except the embeddings) is stored as
int8 rows `W_q` plus per-row float32 scales `<name>_scale`, W ≈ W_q * scale[:, None]. The
rounding is exactly the one the engine applies when it quantizes float32 weights at load
(compute_type="int8"), so a quantized directory decodes bit for bit like its float32
original under compute_type="int8", from a file a quarter of the size.
"""
from __future__ import annotations

import numpy as np

from .model_dir import load_model_dir, write_model_dir
from .model_spec import SCALE_SUFFIX, check_finite, is_quantizable, scale_names


def quantize_rows(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row symmetric int8: scale = max|row| / 127 (1 for an all-zero row), values
    rounded half to even and clipped to ±127 — the engine's rs_quantize_linear."""
    weight = np.asarray(weight, dtype=np.float32)
    peak = np.abs(weight).max(axis=1)
    scale = np.where(peak > 0, peak / np.float32(127.0), np.float32(1.0)).astype(np.float32)
    q = np.clip(np.rint(weight / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def quantize_tensors(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """float32 tensors -> the stored int8 form (already int8 tensors are kept). NaN or inf
    has no int8 value: ModelError naming the tensor."""
    check_finite(tensors, where="quantize")
    out = {}
    for name, value in tensors.items():
        if value.dtype == np.float32 and is_quantizable(name, value.shape):
            out[name], out[name + SCALE_SUFFIX] = quantize_rows(value)
        else:
            out[name] = value
    return out


def dequantize_tensors(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The float32 view of a model's tensors (int8 matrices times their scales)."""
    scales = scale_names(tensors)
    return {name: value.astype(np.float32) * tensors[name + SCALE_SUFFIX][:, None]
            if value.dtype == np.int8 else value
            for name, value in tensors.items() if name not in scales}


def quantize_model_dir(source: str, output: str) -> None:
    """Write `output`: the model directory `source` with int8 weights (may be the same
    path; every file is replaced atomically)."""
    files = load_model_dir(source)
    tensors = quantize_tensors({k: np.array(v) for k, v in files.tensors.items()})
    write_model_dir(output, files.config, tensors, files.source_vocab.tokens,
                    files.target_vocab.tokens)
