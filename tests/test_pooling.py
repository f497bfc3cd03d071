"""Self-attentive pooling (Yang et al. 2016; Lin et al. 2017) as sentence embeddings:
the reference against torch's own attention kernel and the HAN equations written out in
NumPy, Translator.encode against the reference, and its errors."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnsearch  # noqa: E402
from rnnsearch.random_model import vocabularies  # noqa: E402
from rnnsearch.reference import export_model_dir, random_model  # noqa: E402
from rnnsearch.reference.pooling import SelfAttentivePooling  # noqa: E402

V_SOURCE, V_TARGET = 30, 25


def _config(rows=2, size=6, bridge="pooling"):
    return {"format": "rnnsearch-model", "format_version": 1,
            "encoder": {"embedding_size": 8, "cell": "lstm", "hidden_size": 10,
                        "bidirectional": True, "pooling": {"rows": rows, "size": size}},
            "bridge": {"type": bridge},
            "attention": {"score": "general"},
            "decoder": {"type": "luong", "embedding_size": 8, "cell": "gru",
                        "hidden_size": 16}}


def _batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([7, 1, 4, 7])
    memory = torch.randn(4, 7, 12, generator=generator)
    mask = torch.arange(7)[None, :] < lengths[:, None]
    return memory * mask[:, :, None], mask


def test_reference_matches_torch_attention_kernel():
    """M = A H with A = softmax(W_s2 tanh(W_s1 H^T + b)) is attention with the rows of
    W_s2 as queries over the keys tanh(W_s1 h_j + b) and the values h_j, unscaled."""
    torch.manual_seed(0)
    pooling = SelfAttentivePooling({"rows": 3, "size": 5}, 12)
    memory, mask = _batch()
    summary, weights = pooling(memory, mask)
    keys = torch.tanh(pooling.projection(memory))
    queries = pooling.query.weight.expand(memory.size(0), -1, -1)
    expected = torch.nn.functional.scaled_dot_product_attention(
        queries, keys, memory, attn_mask=mask[:, None, :], scale=1.0)
    torch.testing.assert_close(summary, expected, rtol=1e-5, atol=1e-6)
    assert torch.allclose(weights.sum(-1), torch.ones(4, 3))
    assert (weights[~mask[:, None, :].expand_as(weights)] == 0).all()


def test_reference_is_han_for_one_row():
    """Yang et al. 2016, eq. 5-7, in NumPy: u_j = tanh(W h_j + b), a = softmax(u_j . u_w),
    s = sum_j a_j h_j."""
    torch.manual_seed(1)
    pooling = SelfAttentivePooling({"rows": 1, "size": 5}, 12)
    memory, mask = _batch(1)
    with torch.no_grad():
        summary, _ = pooling(memory, mask)
    W, b = pooling.projection.weight.detach().numpy(), pooling.projection.bias.detach().numpy()
    u_w = pooling.query.weight.detach().numpy()[0]
    for row in range(memory.size(0)):
        h = memory[row, :int(mask[row].sum())].numpy()
        scores = np.tanh(h @ W.T + b) @ u_w
        a = np.exp(scores - scores.max())
        a /= a.sum()
        np.testing.assert_allclose(summary[row, 0].numpy(), a @ h, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def pooled(tmp_path_factory):
    model = random_model(_config(), V_SOURCE, V_TARGET, seed=4)
    path = str(tmp_path_factory.mktemp("pooled"))
    source_vocab, target_vocab = vocabularies(V_SOURCE, V_TARGET)
    export_model_dir(model, path, source_vocab, target_vocab)
    return model, rnnsearch.Translator(path), source_vocab


def test_encode_matches_reference(pooled):
    model, translator, vocab = pooled
    rng = np.random.default_rng(0)
    sentences = [[vocab[i] for i in rng.integers(4, V_SOURCE, n)] for n in (1, 5, 100, 37)]
    embeddings, weights = translator.encode(sentences, return_weights=True)
    for tokens, embedding, weight in zip(sentences, embeddings, weights):
        ids = torch.tensor([translator.source_ids(tokens)])
        with torch.no_grad():
            expected, expected_weights = model.embed(ids, torch.tensor([len(tokens)]))
        assert embedding.shape == (2, 20) and weight.shape == (2, len(tokens))
        np.testing.assert_allclose(embedding, expected[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(weight, expected_weights[0].numpy(), atol=1e-5)
    # a batch gives its sentences' embeddings one by one, bit for bit
    for tokens, embedding in zip(sentences, embeddings):
        assert np.array_equal(translator.encode([tokens])[0], embedding)
    assert translator.encode([]) == []


def test_encode_errors(pooled, small_model_dir):
    _, translator, vocab = pooled
    with pytest.raises(ValueError, match="empty"):
        translator.encode([[vocab[5]], []])
    with pytest.raises(TypeError):
        translator.encode("a sentence")
    with pytest.raises(ValueError, match="encoder.pooling"):
        rnnsearch.Translator(small_model_dir).encode([["s1"]])
