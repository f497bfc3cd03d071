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


def beam_search_flops(tensors: dict, source_length: int, batch: int, beam: int,
                      length: int) -> float:
    """2 x multiply-adds of every matrix product: the encoder over the source, then per
    decoder row and step the decoder weights plus attention over the source (scores and
    context). Rows: one per sentence at the first step, beam per sentence after."""
    S = source_length
    key_width, memory_width = tensors["attention.key.weight"].shape  # [keys, D_m]
    encoder = S * sum(tensors[n].size for n in tensors if n.startswith("encoder.layers.")
                      and (n.endswith("weight_ih") or n.endswith("weight_hh")))
    encoder += S * tensors["attention.key.weight"].size
    encoder += sum(tensors[n].size for n in tensors if n.startswith("bridge.")
                   and n.endswith("weight"))
    step = sum(tensors[n].size for n in per_step_decoder_tensors(tensors)
               if tensors[n].ndim == 2)
    step += S * (key_width + memory_width)
    rows = batch + batch * beam * (length - 1)
    return 2.0 * (batch * encoder + rows * step)
