"""The beam search a PyTorch user writes for the reference model (rnnsearch.reference): all
sentences x beam as rows of one batch, one decoder call per step, top-k over beam x
vocabulary, states reordered by row index. It decodes exactly `length` tokens (EOS banned),
as the benchmarks ask every engine to. Used by `rnnsearch bench` and `rnnsearch bench
--compare` (rnnsearch.bench.peers)."""
from __future__ import annotations

import numpy as np
import torch


class TorchBeamSearch:
    """autocast: a dtype (torch.bfloat16) to run the search under torch.autocast("cpu"),
    PyTorch's documented CPU mixed precision (eligible products in that dtype, weights cast
    once per call)."""

    def __init__(self, model, bos: int, eos: int, name: str = "PyTorch", autocast=None):
        self.model, self.bos, self.eos, self.name = model, bos, eos, name
        self.autocast = autocast

    def translate(self, sources: np.ndarray, beam_size: int, length: int, threads: int):
        torch.set_num_threads(threads)
        with torch.inference_mode(), torch.autocast("cpu", dtype=self.autocast or torch.bfloat16,
                                                    enabled=self.autocast is not None):
            return self._search(torch.from_numpy(sources), beam_size, length)

    def _search(self, src, K, length):
        model = self.model
        B = src.size(0)
        memory, state, mask = model.encode(src, torch.full((B,), src.size(1)))
        keys = model.attention_keys(memory)
        rows = torch.arange(B).repeat_interleave(K)   # K beam rows per sentence
        memory, mask, keys, state = memory[rows], mask[rows], keys[rows], state.select(rows)
        scores = torch.full((B, K), float("-inf"))
        scores[:, 0] = 0.0                              # one live hypothesis at the start
        tokens = torch.full((B * K,), self.bos)
        history = torch.empty((B * K, 0), dtype=torch.long)
        first_row = torch.arange(B)[:, None] * K
        for _ in range(length):
            log_probs, state, _ = model.decode_step(tokens, state, memory, mask, keys)
            log_probs[:, self.eos] = float("-inf")      # fixed length: EOS stays banned
            V = log_probs.size(1)
            totals = (scores.view(-1, 1) + log_probs).view(B, K * V)
            scores, flat = totals.topk(K, dim=1)
            parents = (first_row + flat // V).view(-1)
            tokens = (flat % V).view(-1)
            state = state.select(parents)
            history = torch.cat([history.index_select(0, parents), tokens[:, None]], dim=1)
        return history.view(B, K, -1)[:, 0].tolist()
