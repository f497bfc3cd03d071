"""The bounds a decoder cannot beat on one core, for the peer benchmark.

At batch 1 a decoder step must read every decoder weight once, so weight bytes / memory
bandwidth is its floor; at large batch the floor is FLOPs / sgemm rate. Both rates are
measured here on one core, with the libraries a user has (NumPy, PyTorch). NumPy's BLAS
takes its thread count from BLAS_THREAD_VARIABLES when it loads, so it is measured only when
they pin it to one thread. torch is imported by the measurements, not by this module.
"""
from __future__ import annotations

import os
import time

import numpy as np

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def best_seconds(run, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def measure_bandwidth(megabytes: int = 512) -> dict[str, float]:
    """Single-core memory bandwidth in bytes/s over arrays far larger than any cache:
    NumPy's sum (reads) and copy (reads + writes), both single-threaded, and PyTorch's sum
    pinned to one thread (its vectorised loop reads fastest here)."""
    import torch
    a = np.ones(megabytes * 2 ** 20 // 4, np.float32)
    torch.set_num_threads(1)
    measured = {"numpy sum": a.nbytes / best_seconds(a.sum),
                "torch sum": a.nbytes / best_seconds(torch.from_numpy(a).sum)}
    b = np.empty_like(a)
    measured["numpy copy"] = 2 * a.nbytes / best_seconds(lambda: np.copyto(b, a))
    measured["best"] = max(measured.values())
    return measured


def numpy_blas_single_threaded() -> bool:
    return any(os.environ.get(v) == "1" for v in BLAS_THREAD_VARIABLES)


def measure_sgemm(m: int = 160, k: int = 1024, n: int = 4096) -> dict[str, float]:
    """Single-core float32 matrix product rate in FLOP/s: PyTorch pinned to one thread
    and, when its BLAS is pinned to one thread by the environment, NumPy."""
    import torch
    flops = 2.0 * m * k * n
    rng = np.random.default_rng(0)
    x, w = rng.random((m, k), np.float32), rng.random((k, n), np.float32)
    torch.set_num_threads(1)
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    measured = {"torch mm": flops / best_seconds(lambda: xt @ wt, 10)}
    if numpy_blas_single_threaded():
        measured["numpy matmul"] = flops / best_seconds(lambda: x @ w, 10)
    measured["best"] = max(measured.values())
    return measured


def per_step_decoder_tensors(tensors: dict) -> list[str]:
    """Decoder-side weights every step reads (the attention keys' projection runs once per
    sentence; of the embedding only one row is read)."""
    return [name for name in tensors
            if (name.startswith("decoder.") and not name.startswith("decoder.embedding"))
            or (name.startswith("attention.") and not name.startswith("attention.key"))]


def decoder_step_bytes(tensors: dict) -> int:
    embedding_row = tensors["decoder.embedding.weight"][0].nbytes
    return embedding_row + sum(tensors[n].nbytes for n in per_step_decoder_tensors(tensors))


def encoder_macs(tensors: dict, layer_positions: list[int], memory_positions: int) -> int:
    """Multiply-adds of one sentence's encoding: every encoder layer's input and recurrent
    products over the positions that layer runs on (`layer_positions[l]`: the source
    length, or less after subsampling), a projection after layer l over the next layer's
    positions, a feature input projection over the first layer's, the attention keys'
    projection over the memory, and the bridge once."""
    def positions(name: str) -> int:
        parts = name.split(".")
        if name.startswith("attention.key"):
            return memory_positions
        if name.startswith("bridge."):
            return 1
        if parts[1] == "input_projection":
            return layer_positions[0] if layer_positions else memory_positions
        layer = int(parts[2])
        if parts[3] != "projection":
            return layer_positions[layer]
        return (layer_positions[layer + 1] if layer + 1 < len(layer_positions)
                else memory_positions)
    matrices = [name for name, tensor in tensors.items()
                if tensor.ndim == 2 and name.endswith(("weight", "weight_ih", "weight_hh"))
                and name.startswith(("encoder.input_projection.", "encoder.layers.",
                                     "bridge.", "attention.key."))]
    return sum(positions(name) * tensors[name].size for name in matrices)


def encoder_layers(tensors: dict) -> int:
    """How many encoder RNN layers the model's tensors hold."""
    return len({n.split(".")[2] for n in tensors if n.startswith("encoder.layers.")})


def decoder_matrix_macs(tensors: dict) -> int:
    """Multiply-adds of every per-step decoder matrix, once (one hypothesis, one step)."""
    return sum(tensors[n].size for n in per_step_decoder_tensors(tensors)
               if tensors[n].ndim == 2)


def decoder_row_macs(tensors: dict, memory_positions: int) -> int:
    """Multiply-adds of one hypothesis's decoder step: every per-step matrix once, and
    attention over the memory (scores and context)."""
    key_width, memory_width = tensors["attention.key.weight"].shape  # [keys, D_m]
    return decoder_matrix_macs(tensors) + memory_positions * (key_width + memory_width)


def decoded_macs(tensors: dict, source_lengths: list[int], decoded_rows: int) -> int:
    """Multiply-adds of a search that encoded these sources (a token encoder: every layer
    over every token) and stepped the decoder `decoded_rows` times in all, each row
    attending over the shortest source (so a lower bound; without a key projection the
    attention's own products are left out too)."""
    layers = encoder_layers(tensors)
    encoder = sum(encoder_macs(tensors, [n] * layers, n) for n in source_lengths)
    row = (decoder_row_macs(tensors, min(source_lengths)) if "attention.key.weight" in tensors
           else decoder_matrix_macs(tensors))
    return encoder + decoded_rows * row


def beam_search_flops(tensors: dict, source_length: int, batch: int, beam: int,
                      length: int) -> float:
    """2 x multiply-adds of every matrix product: the encoder over the source, then per
    decoder row and step the decoder weights plus attention over the source (scores and
    context). Rows: one per sentence at the first step, beam per sentence after."""
    S = source_length
    rows = batch + batch * beam * (length - 1)
    return 2.0 * (batch * encoder_macs(tensors, [S] * encoder_layers(tensors), S)
                  + rows * decoder_row_macs(tensors, S))


def last_level_cache_bytes() -> int:
    """This machine's L3 (or last) cache in bytes, from sysfs; 64 MiB when unknown (a
    larger cache only lowers a floor)."""
    for index in (3, 2):
        try:
            with open(f"/sys/devices/system/cpu/cpu0/cache/index{index}/size") as f:
                text = f.read().strip()
        except OSError:
            continue
        units = {"K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30}
        return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
    return 64 * 2 ** 20


def search_floor_seconds(tensors: dict, layer_positions: list[int], memory_positions: int,
                         batch: int, beam: int, length: int, read_rate: float,
                         mac_rate: float, cache_bytes: int) -> float:
    """A lower bound on the time of a beam search of exactly `length` steps on one core:
    the encoder's multiply-adds at `mac_rate`, then per step the larger of the rows'
    multiply-adds at `mac_rate` and reading the decoder weights that do not fit in the
    cache (`cache_bytes`) at `read_rate` bytes/s. It leaves out the nonlinearities, the
    softmax and the search itself, and assumes every product runs at the FMA peak (a
    batch-1 recurrence runs at L2 speed), so a real engine is always slower."""
    step_read = max(0, decoder_step_bytes(tensors) - cache_bytes) / read_rate
    row = decoder_row_macs(tensors, memory_positions) / mac_rate
    seconds = batch * encoder_macs(tensors, layer_positions, memory_positions) / mac_rate
    for rows in [batch] + [batch * beam] * (length - 1):
        seconds += max(step_read, rows * row)
    return seconds


def search_floors(tensors: dict, layer_positions: list[int], memory_positions: int,
                  batch: int, beam: int, length: int, read_rate: float,
                  mac_rate: float) -> tuple[float, float]:
    """search_floor_seconds twice: (the L3 cache keeping as much of the decoder weights as
    it holds: a strict lower bound; every weight streamed from memory each step: what this
    machine does once the weights outgrow L3 -- tools/cpu_peak.py's cyclic read of 1.5 x L3
    runs at the streaming rate)."""
    def floor(cache_bytes: int) -> float:
        return search_floor_seconds(tensors, layer_positions, memory_positions, batch, beam,
                                    length, read_rate, mac_rate, cache_bytes)
    return floor(last_level_cache_bytes()), floor(0)
