"""A framework-agnostic, deliberately plain beam search that follows docs/model-format.md
("Decoding") line by line. Converter tests drive a framework's own decoder step through it
(ONNX Runtime, Keras, a user's PyTorch module) to get the framework's output for the same
search settings the engine uses.

step(states, tokens) -> (log_probs [n, V] float, new_states list, attention [n, S] or None)
where states is a list of opaque per-hypothesis states and tokens the previous tokens.
"""
from __future__ import annotations

import math

import numpy as np


def beam_search(step, initial_state, bos: int, eos: int, beam_size: int = 1,
                num_hypotheses: int = 1, min_length: int = 0, max_length: int = 200,
                length_penalty: float = 0.0, coverage_penalty: float = 0.0,
                normalize_scores: bool = False):
    """Returns [(tokens, score, attention rows [len(tokens), S] or None)], best first."""
    K = beam_size
    live = [([], 0.0, initial_state, [])]  # (tokens, total, state, attention rows)
    finished = []
    for t in range(max_length):
        last = t == max_length - 1
        log_probs, states, attention = step([h[2] for h in live], [h[0][-1] if h[0] else bos
                                                                   for h in live])
        log_probs = np.array(log_probs, dtype=np.float32)
        if t < min_length:
            log_probs[:, eos] = -np.inf
        V = log_probs.shape[1]
        candidates = []
        for h, (tokens, total, _, _) in enumerate(live):
            for v in range(V):
                value = np.float32(total) + log_probs[h, v]
                if value != -np.inf:
                    candidates.append((-float(value), h * V + v))
        candidates.sort()  # best total first, then smaller flat index
        next_live = []
        for rank, (neg, flat) in enumerate(candidates[:2 * K]):
            h, v = divmod(flat, V)
            tokens, _, _, rows = live[h]
            rows = rows + ([attention[h]] if attention is not None else [])
            if v == eos or last:
                if rank < K:
                    out = tokens if v == eos else tokens + [v]
                    length = t + 1
                    lp = float(length) if normalize_scores else \
                        ((5.0 + length) / 6.0) ** length_penalty if length_penalty else 1.0
                    score = -neg / lp
                    if coverage_penalty and attention is not None:
                        coverage = np.sum(np.array(rows), axis=0)
                        score += coverage_penalty * float(np.sum(np.log(np.minimum(coverage, 1.0))))
                    finished.append((out, score, np.array(rows[:len(out)]) if attention is not None
                                     else None))
            elif len(next_live) < K:
                next_live.append((tokens + [v], -neg, states[h], rows))
        if len(finished) >= K or last or not next_live:
            break
        live = next_live
    finished.sort(key=lambda f: -f[1])  # stable: earlier finishers first among equals
    return finished[:num_hypotheses]


def assert_same_results(engine_results, oracle_results, score_tol=1e-4):
    """Engine hypotheses (token ids) and scores equal the oracle's."""
    assert [list(h[0]) for h in engine_results] == [list(h[0]) for h in oracle_results]
    for (_, a, _), (_, b, _) in zip(engine_results, oracle_results):
        assert math.isclose(a, b, rel_tol=score_tol, abs_tol=score_tol), (a, b)


def assert_engine_matches(engine, sources, search, beam_size: int, max_length: int):
    """The engine's beam_size-best of each source (token ids) equal search(ids, beam_size),
    a framework's results through beam_search."""
    results = engine.translate(sources, beam_size=beam_size, num_hypotheses=beam_size,
                               max_length=max_length)
    for ids, found in zip(sources, results):
        assert_same_results(found, search(ids, beam_size))
