"""Plain greedy and beam search over a reference Seq2Seq, following the "Decoding" section
of docs/model-format.md step by step. One sentence at a time (a batch is one-by-one
calls, which is what the spec promises the engine computes); readable rather than fast.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .modules import Seq2Seq


class Hypothesis(NamedTuple):
    tokens: list[int]          # without BOS and without the final EOS
    score: float
    attention: np.ndarray      # [len(tokens), S] float32 (zeros without attention); with
                               # eos_attention one more row for the EOS step
    log_prob: float = 0.0      # the sum of the log-probabilities, before any penalty


def length_penalty_divisor(length: int, length_penalty: float, normalize_scores: bool,
                           length_normalization: float = 0.0) -> float:
    """lp of the spec: the length with normalize_scores, length^a with length_normalization
    a, else GNMT's ((5 + |Y|) / 6)^α."""
    if normalize_scores:
        return float(length)
    if length_normalization != 0.0:
        return float(length) ** length_normalization
    if length_penalty == 0.0:
        return 1.0
    return ((5.0 + length) / 6.0) ** length_penalty


def coverage_penalty_value(rows: list[np.ndarray], beta: float) -> float:
    """cp = β Σ_j log(min(Σ_t a_tj, 1)) over every step of the hypothesis (its EOS step
    included)."""
    if beta == 0.0 or not rows:
        return 0.0
    coverage = np.sum(np.asarray(rows, dtype=np.float32), axis=0)
    with np.errstate(divide="ignore"):
        return beta * float(np.sum(np.log(np.minimum(coverage, np.float32(1.0)))))


def best_candidates(totals: np.ndarray, count: int) -> np.ndarray:
    """Flat indices of the `count` largest totals, best first, ties by smaller index."""
    if totals.size > count:
        # only entries at least as good as the count-th best can be chosen (a partition
        # instead of sorting all n*V totals: large vocabularies stay cheap)
        threshold = np.partition(-totals, count - 1)[count - 1]
        chosen = np.flatnonzero(-totals <= threshold)  # ascending flat index
    else:
        chosen = np.arange(totals.size)
    # the stable sort keeps the ascending flat index among equal totals
    return chosen[np.argsort(-totals[chosen], kind="stable")][:count]


def _check_options(beam_size, num_hypotheses, min_decoding_length, max_decoding_length):
    if beam_size < 1 or not 1 <= num_hypotheses <= beam_size:
        raise ValueError("need beam_size >= 1 and 1 <= num_hypotheses <= beam_size")
    if max_decoding_length < 1 or not 0 <= min_decoding_length <= max_decoding_length:
        raise ValueError("need max_decoding_length >= 1 and "
                         "0 <= min_decoding_length <= max_decoding_length")


@torch.inference_mode()
def translate(model: Seq2Seq, src_ids, bos_id: int, eos_id: int,
              beam_size: int = 1, num_hypotheses: int = 1, min_decoding_length: int = 0,
              max_decoding_length: int = 200, length_penalty: float = 0.0,
              coverage_penalty: float = 0.0, normalize_scores: bool = False,
              suppress: tuple[int, ...] = (), prefix: tuple[int, ...] = (),
              shrinking_beam: bool = False, length_normalization: float = 0.0,
              word_penalty: float = 0.0, max_length_factor: float = 0.0,
              eos_attention: bool = False,
              attention_constraint: tuple[int, int] | None = None) -> list[Hypothesis]:
    """The `num_hypotheses` best hypotheses for one source (ids as given: BOS/EOS are not
    added here; or, for a feature model, a [T, F] array of frames), best first.
    beam_size=1 is greedy search; `suppress` ids are never produced; `prefix` ids are
    forced first (CTranslate2's target_prefix: part of the hypothesis, not of the score).
    Marian's search: shrinking_beam (finished hypotheses leave the beam),
    length_normalization a and word_penalty w (score (total - w |Y|) / |Y|^a),
    max_length_factor (at most ceil(factor * S) steps), eos_attention (the EOS step's
    attention row kept); attention_constraint (backward, forward) limits each step's
    weights to a window around the previous step's argmax. Attention rows have one column
    per memory position (fewer than T when the encoder subsamples)."""
    _check_options(beam_size, num_hypotheses, min_decoding_length, max_decoding_length)
    S = len(src_ids)
    if S == 0:
        return [Hypothesis([], 0.0, np.zeros((0, 0), np.float32))]
    was_training = model.training
    model.eval()
    try:
        if model.config["source"]["kind"] == "features":
            src = torch.as_tensor(np.asarray(src_ids, np.float32))[None]
        else:
            src = torch.tensor([list(src_ids)], dtype=torch.long)
        memory, state, mask = model.encode(src, torch.tensor([S]))
        # the positions the memory counts (ESPnet's stride count can leave one more out)
        valid = int(mask.sum())
        memory, mask = memory[:, :valid], mask[:, :valid]
        keys = model.attention_keys(memory)
        if max_length_factor > 0:  # in float32, as the engine (and Marian) compute it
            limit = int(np.ceil(np.float32(max_length_factor) * np.float32(S)))
            max_decoding_length = max(1, min(max_decoding_length, limit))
        marian = dict(shrinking_beam=shrinking_beam, length_normalization=length_normalization,
                      word_penalty=word_penalty, eos_attention=eos_attention)
        finished = _beam_search(model, memory, keys, mask, state, bos_id, eos_id, beam_size,
                                min_decoding_length, max_decoding_length, length_penalty,
                                coverage_penalty, normalize_scores, tuple(suppress),
                                tuple(prefix), constraint=attention_constraint, **marian)
    finally:
        model.train(was_training)
    finished.sort(key=lambda h: -h.score)  # stable: earlier finishers first among equals
    return finished[:num_hypotheses]


def translate_batch(model: Seq2Seq, batch: list[list[int]], bos_id: int, eos_id: int,
                    **options) -> list[list[Hypothesis]]:
    """translate() for each source: sentences never influence each other."""
    return [translate(model, src_ids, bos_id, eos_id, **options) for src_ids in batch]


def _beam_search(model, memory, keys, mask, state, bos, eos, K, min_length, max_length,
                 alpha, beta, normalize, suppress=(), prefix=(), shrinking_beam=False,
                 length_normalization=0.0, word_penalty=0.0, eos_attention=False,
                 constraint=None) -> list[Hypothesis]:
    S = memory.size(1)
    # live hypotheses, in rank order: tokens so far, log-probability, attention rows
    live_tokens: list[list[int]] = [[]]
    live_totals = np.zeros(1, np.float32)
    live_rows: list[list[np.ndarray]] = [[]]
    previous = torch.tensor([bos])
    finished: list[Hypothesis] = []
    for t in range(max_length):
        last = t == max_length - 1
        n = len(live_tokens)
        log_probs, next_state, weights = model.decode_step(
            previous, state, memory.expand(n, -1, -1), mask.expand(n, -1),
            None if keys is None else keys.expand(n, -1, -1), constraint)
        log_probs = log_probs.numpy().astype(np.float32, copy=True)
        if np.isnan(log_probs).any():
            raise ValueError("the model produced NaN scores")
        weights = np.zeros((n, S), np.float32) if weights is None else weights.numpy()
        if t < min_length:
            log_probs[:, eos] = -np.inf
        log_probs[:, list(suppress)] = -np.inf
        V = log_probs.shape[1]
        totals = (live_totals[:, None] + log_probs).reshape(-1)  # float32, flat h*V + v
        # Marian's beam narrows by one for every finished hypothesis
        width = K - len(finished) if shrinking_beam else 2 * K
        candidates = [int(i) for i in best_candidates(totals, width) if totals[i] != -np.inf]
        if t < len(prefix):  # the one live hypothesis takes the prefix token; total 0
            totals[prefix[t]] = 0.0
            candidates = [prefix[t]]

        next_tokens, next_totals, next_rows, parents = [], [], [], []
        for rank, flat in enumerate(candidates):
            h, v = divmod(flat, V)
            rows = live_rows[h] + [weights[h]]
            if v == eos or last:
                if rank < K:  # a forced finish (last step, v != EOS) keeps v
                    tokens = live_tokens[h] + ([] if v == eos else [v])
                    length = t + 1
                    total = float(totals[flat])
                    score = (total - word_penalty * length) / length_penalty_divisor(
                        length, alpha, normalize, length_normalization)
                    if model.has_attention:
                        score += coverage_penalty_value(rows, beta)
                    kept = rows if eos_attention else rows[:len(tokens)]
                    attention = np.asarray(kept, np.float32).reshape(-1, S)
                    finished.append(Hypothesis(tokens, score, attention, total))
            elif len(next_tokens) < K:
                next_tokens.append(live_tokens[h] + [v])
                next_totals.append(totals[flat])
                next_rows.append(rows)
                parents.append(h)
        if len(finished) >= K or last or not next_tokens:
            break
        live_tokens, live_rows = next_tokens, next_rows
        live_totals = np.array(next_totals, np.float32)
        state = next_state.select(torch.tensor(parents))
        previous = torch.tensor([tokens[-1] for tokens in live_tokens])
    return finished
