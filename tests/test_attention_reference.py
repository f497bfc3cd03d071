"""The reference attention types (rnnsearch.reference.attention) against other
formulations of the same equations: local attention as torch's own attention kernel
(scaled_dot_product_attention) over the window, with the Gaussian folded into the values
and the zero-padded positions as extra keys; hard monotonic attention and MoChA as the
papers' Algorithm 1, a loop over positions one row at a time."""
import math

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from rnnsearch.reference.attention import Attention  # noqa: E402
from rnnsearch.reference.modules import full_config  # noqa: E402

D_M = H_D = 6


def _attention(**section):
    config = full_config({
        "encoder": {"embedding_size": 4, "cell": "gru", "hidden_size": 3,
                    "bidirectional": True},
        "attention": section,
        "decoder": {"type": "luong", "embedding_size": 4, "cell": "gru", "hidden_size": H_D}})
    torch.manual_seed(0)
    attention = Attention(config["attention"], H_D, D_M)
    with torch.no_grad():
        for p in attention.parameters():
            p.uniform_(-1.0, 1.0)
    return attention.eval()


def _batch(B=5, S=9, seed=0):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([9, 1, 2, 5, 9])[:B]
    mask = torch.arange(S)[None, :] < lengths[:, None]
    memory = torch.randn(B, S, D_M, generator=generator) * mask[:, :, None]
    return torch.randn(B, H_D, generator=generator), memory, mask, lengths


@pytest.mark.parametrize("edges", ["clip", "zero_pad"])
@pytest.mark.parametrize("score", ["dot", "general"])
def test_local_p_is_windowed_attention(score, edges):
    D = 2
    attention = _attention(type="local", score=score, local={
        "mode": "predictive", "window": D, "position_size": 4, "edges": edges})
    query, memory, mask, lengths = _batch()
    keys = attention.keys(memory)
    with torch.no_grad():
        context, weights, _ = attention.step(query, keys, memory, mask,
                                             attention.initial_state(mask))
        # Luong et al. 2015, eq. 9 and 10, with the Gaussian folded into the values
        p = lengths * torch.sigmoid(attention.position_v @ torch.tanh(
            attention.position(query)).T + attention.position_v_bias)
        s = torch.arange(memory.size(1))[None, :].float()
        window = mask & ((s - torch.floor(p)[:, None]).abs() <= D)
        gauss = torch.exp(-(s - p[:, None]) ** 2 / (2 * (D / 2) ** 2))
        values = memory * gauss[:, :, None]
        k, allowed = keys, window
        if edges == "zero_pad":  # the window's positions outside the sentence, as zeros
            zero_key = attention.key(torch.zeros(D_M)) if attention.key is not None \
                else torch.zeros(D_M)
            k = torch.cat([keys, zero_key.expand(5, 2 * D + 1, -1)], dim=1)
            values = torch.cat([values, torch.zeros(5, 2 * D + 1, D_M)], dim=1)
            pads = 2 * D + 1 - window.sum(1)
            allowed = torch.cat([window, torch.arange(2 * D + 1)[None, :] < pads[:, None]], 1)
        scale = attention.scale if score == "dot" else 1.0
        expected = F.scaled_dot_product_attention(
            query[:, None, :] * scale, k, values, attn_mask=allowed[:, None, :],
            scale=1.0)[:, 0]
    torch.testing.assert_close(context, expected, rtol=1e-5, atol=1e-6)
    assert (weights[~window] == 0).all()


def test_local_m_is_windowed_attention_and_empties_past_the_sentence():
    attention = _attention(type="local", score="general", local={"mode": "monotonic",
                                                                 "window": 1})
    query, memory, mask, _ = _batch()
    keys = attention.keys(memory)
    state = attention.initial_state(mask)
    for t in range(12):
        with torch.no_grad():
            context, weights, state = attention.step(query, keys, memory, mask, state)
        s = torch.arange(memory.size(1))[None, :]
        window = mask & ((s - t).abs() <= 1)
        expected = torch.zeros_like(context)
        rows = window.any(1)  # an empty window (t past the sentence) gives a zero context
        expected[rows] = F.scaled_dot_product_attention(
            query[rows, None, :], keys[rows], memory[rows],
            attn_mask=window[rows, None, :], scale=1.0)[:, 0]
        torch.testing.assert_close(context, expected, rtol=1e-5, atol=1e-6)
        assert torch.equal(state, torch.full_like(state, t + 1))


def _algorithm_1(attention, queries, keys, memory, length, chunk=None):
    """Raffel et al. 2017 / Chiu & Raffel 2018, Algorithm 1 at test time, one sentence."""
    t, contexts = 0, []
    for q in queries:
        chosen = None
        if t is not None:
            for j in range(t, length):
                e = attention.energies(q[None], keys[None, j:j + 1])[0, 0]
                if 1.0 / (1.0 + math.exp(-float(e))) >= 0.5:
                    chosen = j
                    break
        t = chosen
        if chosen is None:
            contexts.append(torch.zeros(D_M))
        elif chunk is None:
            contexts.append(memory[chosen])
        else:
            lo = max(0, chosen - chunk + 1)
            u = torch.stack([attention.chunk_v @ torch.tanh(
                attention.chunk_query(q) + attention.chunk_key(memory[k]))
                for k in range(lo, chosen + 1)])
            contexts.append(torch.softmax(u, 0) @ memory[lo:chosen + 1])
    return torch.stack(contexts)


@pytest.mark.parametrize("kind", ["monotonic", "mocha"])
def test_monotonic_is_algorithm_1(kind):
    extra = {"mocha": {"chunk_size": 3, "size": 4}} if kind == "mocha" else {}
    attention = _attention(type=kind, score="additive", size=5, **extra)
    with torch.no_grad():
        attention.energy_bias.fill_(0.0)
    _, memory, mask, lengths = _batch()
    generator = torch.Generator().manual_seed(3)
    queries = torch.randn(10, 5, H_D, generator=generator)  # 10 steps of 5 rows
    keys = attention.keys(memory)
    state = attention.initial_state(mask)
    got = []
    with torch.no_grad():
        for q in queries:
            context, _, state = attention.step(q, keys, memory, mask, state)
            got.append(context)
        got = torch.stack(got, 1)
        stopped = 0
        for row in range(5):
            expected = _algorithm_1(attention, queries[:, row], keys[row], memory[row],
                                    int(lengths[row]), 3 if extra else None)
            torch.testing.assert_close(got[row], expected, rtol=1e-5, atol=1e-6)
            stopped += int((expected == 0).all(1).any())
    assert 0 < stopped < 5  # some rows stop attending, others do not
