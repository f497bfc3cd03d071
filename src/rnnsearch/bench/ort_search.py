"""ONNX Runtime's beam search for the peer benchmark, as a tuned user writes it: the decoder
step graph carries a TopK head (onnx_graphs.with_top_k), so every step returns the k best
(score, token) of each row from ONNX Runtime's own TopK kernel and NumPy only picks the k best
of the k x k candidates per sentence; states are reordered by row index."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

from .onnx_graphs import TOP_K_OUTPUTS, OnnxGraphs


def top_k(totals: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k largest entries of every row, best first. Equal totals
    inside the k come in index order; which of several equal totals at the k-th place gets
    in is NumPy's choice (as it is torch.topk's), a tie that float scores hardly ever
    produce."""
    if k == 1:
        return totals.argmax(axis=1)[:, None]
    chosen = np.sort(np.argpartition(-totals, k - 1, axis=1)[:, :k], axis=1)
    order = np.argsort(-np.take_along_axis(totals, chosen, axis=1), axis=1, kind="stable")
    return np.take_along_axis(chosen, order, axis=1)


class OrtBeamSearch:
    """ONNX Runtime sessions for the two graphs (one pair per thread count, created with all
    graph optimisations, ONNX Runtime's default) driven by a NumPy beam search. `graphs`
    must have the TopK head (onnx_graphs.with_top_k)."""

    def __init__(self, graphs: OnnxGraphs, bos: int, name: str = "ONNX Runtime"):
        self.graphs, self.bos, self.name = graphs, bos, name
        self._sessions = {}

    def _sessions_for(self, threads: int):
        if threads not in self._sessions:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            self._sessions[threads] = tuple(
                ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                for path in (self.graphs.encoder, self.graphs.decoder))
        return self._sessions[threads]

    def translate(self, sources: np.ndarray, beam_size: int, length: int, threads: int):
        encoder, decoder = self._sessions_for(threads)
        K, (B, S) = beam_size, sources.shape
        names = [o.name for o in encoder.get_outputs()]
        encoded = dict(zip(names, encoder.run(None, {"src": sources})))
        rows = np.repeat(np.arange(B), K)               # K beam rows per sentence
        fixed = {"memory": encoded["memory"][rows], "keys": encoded["keys"][rows],
                 "mask": np.ones((B * K, S), dtype=bool), "k": np.array([K], np.int64)}
        states = {s.name: np.take(encoded[s.name], rows, axis=s.batch_axis) if s.from_encoder
                  else np.zeros((B * K, s.width), np.float32) for s in self.graphs.states}
        outputs = list(TOP_K_OUTPUTS) + [s.name + "_out" for s in self.graphs.states]
        scores = np.full((B, K), -np.inf, np.float32)
        scores[:, 0] = 0.0                              # one live hypothesis at the start
        tokens = np.full(B * K, self.bos, np.int64)
        history = np.empty((B * K, 0), np.int64)
        first_row = np.arange(B)[:, None] * K
        for _ in range(length):
            top_totals, top_ids, *new_states = decoder.run(
                outputs, {"y": tokens, "scores": scores.reshape(-1), **fixed, **states})
            candidates = top_totals.reshape(B, K * K)   # row-major: parent row, then rank
            pick = top_k(candidates, K)
            scores = np.take_along_axis(candidates, pick, axis=1)
            parents = (first_row + pick // K).reshape(-1)
            tokens = np.take_along_axis(top_ids.reshape(B, K * K), pick, axis=1).reshape(-1)
            states = {s.name: np.take(value, parents, axis=s.batch_axis)
                      for s, value in zip(self.graphs.states, new_states)}
            history = np.concatenate([history[parents], tokens[:, None]], axis=1)
        return history.reshape(B, K, -1)[:, 0].tolist()
