"""Random model directories (NumPy only): for benchmarks and tests that need a model of a
given shape but not a trained one."""
from __future__ import annotations

import numpy as np

from .model_dir import write_model_dir
from .model_spec import FORMAT_NAME, FORMAT_VERSION, expected_tensors, normalize_config

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]

# Named sizes for `rnnsearch bench --size`.
SIZES = {
    "small": dict(src_vocab=80, tgt_vocab=80, embedding=128, hidden=256, layers=1,
                  cell="gru", decoder_hidden=256),
    "medium": dict(src_vocab=8000, tgt_vocab=8000, embedding=256, hidden=256, layers=1,
                   cell="lstm", decoder_hidden=512),
    "nmt": dict(src_vocab=32000, tgt_vocab=32000, embedding=512, hidden=512, layers=2,
                cell="lstm", decoder_hidden=1024),
}


def sized_config(size: str) -> tuple[dict, int, int]:
    """A GNMT/OpenNMT-like config (bi-RNN encoder, Luong decoder with input feeding and
    general attention) of a named size; returns (config, source vocab, target vocab)."""
    s = SIZES[size]
    config = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
        "encoder": {"embedding_size": s["embedding"], "cell": s["cell"],
                    "hidden_size": s["hidden"], "num_layers": s["layers"],
                    "bidirectional": True},
        "bridge": {"type": "zeros"},
        "attention": {"score": "general"},
        "decoder": {"type": "luong", "embedding_size": s["embedding"], "cell": s["cell"],
                    "hidden_size": s["decoder_hidden"], "num_layers": s["layers"],
                    "input_feeding": True},
    }
    return config, s["src_vocab"], s["tgt_vocab"]


def vocabularies(source_size: int, target_size: int) -> tuple[list[str], list[str]]:
    src = SPECIALS + [f"s{i}" for i in range(source_size - len(SPECIALS))]
    tgt = SPECIALS + [f"t{i}" for i in range(target_size - len(SPECIALS))]
    return src, tgt


def random_tensors(config: dict, source_size: int, target_size: int, seed: int = 0,
                   output_scale: float = 4.0) -> dict[str, np.ndarray]:
    """Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights like PyTorch's defaults; the output
    layer is scaled up so the next-token distribution is peaked, as a trained model's is."""
    rng = np.random.default_rng(seed)
    normalized = normalize_config(config)
    tensors = {}
    for name, spec in expected_tensors(normalized, source_size, target_size).items():
        fan_in = spec.shape[-1] if len(spec.shape) > 1 else spec.shape[0]
        if "embedding" in name:
            bound = 1.0
        elif len(spec.shape) == 1 and name.endswith("bias"):
            bound = 0.1
        else:
            bound = 1.0 / np.sqrt(fan_in)
        if name == "decoder.output.weight":
            bound *= output_scale
        tensors[name] = rng.uniform(-bound, bound, spec.shape).astype(np.float32)
    return tensors


def write_random_model(path: str, config: dict, source_size: int, target_size: int,
                       seed: int = 0, output_scale: float = 4.0) -> None:
    src, tgt = vocabularies(source_size, target_size)
    tensors = random_tensors(config, source_size, target_size, seed, output_scale)
    write_model_dir(path, config, tensors, src, tgt)
