"""Size limits: what a model and a translation request may ask for, checked before anything
is allocated.

The engine's limits are named in engine/rs_limits.h; they are repeated here so that configs
and converters can be checked without the compiled engine (tests/test_limits.py checks the
two agree). The file limits bound what a loader reads before it parses anything.
"""
from __future__ import annotations

import functools
import numbers
import os

# ---- the engine's (engine/rs_limits.h)
MAX_LAYERS = 16                   # encoder or decoder layers
MAX_WIDTH = 65536                 # embedding, hidden, attention and readout sizes
MAX_VOCAB = 16_777_216            # tokens in a vocabulary
MAX_SOURCE_LENGTH = 65536         # source tokens, BOS/EOS/padding included
MAX_DECODING_LENGTH = 65536       # target tokens
MAX_BEAM = 4096                   # beam size
MAX_BATCH = 16_777_216            # sentences in one engine call
MAX_BLOCK_ELEMENTS = 2**31 - 1    # rows (batch x beam) x the widest row, in floats
MAX_POOLED_WIDTH = 2**24          # encoder.pooling's summary: rows x memory width

# ---- files
MAX_CONFIG_BYTES = 16 * 2**20     # config.json and other JSON/YAML configs
MAX_JSON_DEPTH = 64               # nesting of a config (the schema needs 3)
MAX_CONFIG_ITEMS = 10_000_000     # values reachable in a parsed config (YAML aliases)
MAX_VOCAB_BYTES = 2**30           # a vocabulary file
MAX_WEIGHTS_HEADER_BYTES = 100 * 2**20   # the JSON header of a safetensors file
MAX_TENSOR_ELEMENTS = 2**31       # one tensor of a converter's input (8 GiB as float32)
MAX_VMAP_BYTES = 256 * 2**20      # a vocabulary map (vmap.txt)
MAX_VMAP_RULES = 4_000_000        # its lines (each costs ~200 bytes of memory)
MAX_VMAP_ORDER = 8                # tokens in one of its source n-grams

# ---- options
MAX_ABS_PENALTY = 10.0            # |length_penalty|, |coverage_penalty| (GNMT uses 0..2)
MAX_THREADS = 1024                # intra_threads


def check_int(name: str, value, low: int, high: int) -> int:
    """ValueError naming the option unless value is an int (not bool) in [low, high]."""
    if type(value) is int and low <= value <= high:   # the usual case, without ABC checks
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return int(value)


def check_real(name: str, value, low: float, high: float) -> float:
    """ValueError naming the option unless value is a finite real number in [low, high]."""
    if type(value) in (float, int) and low <= value <= high:   # without ABC checks
        return float(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not low <= value <= high:   # False for NaN; exact for any int
        raise ValueError(f"{name} must be a finite number between {low} and {high}, got "
                         f"{value}")
    return float(value)


@functools.cache   # asked on every translate call: the machine's RAM does not change
def physical_memory() -> int:
    """Bytes of RAM of this machine (a request needing more can never succeed)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 2**40


def decoding_bytes(config: dict, vocab_size: int, batch: int, beam: int, source_length: int,
                   max_length: int, keep_attention: bool, block_floats=None) -> int:
    """A lower bound of the memory the engine allocates to decode one batch: the row
    block's logits, attention and states, the encoder's activations, and the search
    history (docs/security.md, "Limits"). block_floats(rows, source_length), when given,
    is the engine's own count of a decoder block (Engine.decoder_block_floats: the
    attention type's state and scratch included); it replaces the per-row estimate when
    larger, and None from it means the block does not fit in a size_t at all."""
    enc, dec = config["encoder"], config["decoder"]
    rows = batch * beam
    gates = {"lstm": 4, "gru": 3}.get(dec["cell"], 1)
    hidden = enc["hidden_size"] or 0   # None: a features encoder without layers
    memory_width = hidden * (2 if enc["bidirectional"] else 1)
    # what the encoder reads per position: embeddings, or frames (source.feature_size)
    source_width = enc["embedding_size"] or config["source"].get("feature_size") or 0
    per_row = vocab_size + source_length + dec["num_layers"] * 2 * dec["hidden_size"] * 2 \
        + gates * dec["hidden_size"] + memory_width + dec["embedding_size"]
    encoder = batch * source_length * (source_width + 2 * memory_width + 4 * hidden)
    history = rows * max_length * (2 + (source_length if keep_attention else 0))
    block = rows * per_row
    if block_floats is not None:
        engine_block = block_floats(rows, source_length) \
            if rows < 2**31 and source_length < 2**31 else None   # the engine counts in int
        block = max(block, engine_block if engine_block is not None else 2**64)
    return 4 * (block + encoder + history)


def check_embedding_size(batch: int, rows: int, memory_width: int, source_length: int) -> None:
    """ValueError when Translator.encode's results (rows x (memory width + source length)
    floats per sentence) cannot fit in this machine's memory."""
    need = 4 * batch * rows * (memory_width + source_length)
    have = physical_memory()
    if need > have:
        raise ValueError(f"embedding {batch} sentence(s) of up to {source_length} tokens needs "
                         f"at least {need / 2**30:.1f} GiB, more than this machine's "
                         f"{have / 2**30:.1f} GiB: embed fewer sentences at a time")


def check_decoding_size(config: dict, vocab_size: int, batch: int, beam: int,
                        source_length: int, max_length: int, keep_attention: bool,
                        block_floats=None) -> None:
    """ValueError saying what to lower when a batch cannot fit in this machine's memory."""
    need = decoding_bytes(config, vocab_size, batch, beam, source_length, max_length,
                          keep_attention, block_floats)
    have = physical_memory()
    if need > have:
        raise ValueError(
            f"decoding {batch} sentence(s) of up to {source_length} tokens with beam_size "
            f"{beam} over a vocabulary of {vocab_size} needs at least {need / 2**30:.1f} GiB, "
            f"more than this machine's {have / 2**30:.1f} GiB: lower the batch size "
            "(max_batch_size), beam_size or max_decoding_length, or split long sources")
