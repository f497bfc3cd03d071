"""`rnnsearch convert --from torch` with the attention options' and pooling's roles:
user-style PyTorch models written the way their papers describe them (local-p over a
zero-padded window, MoChA with Raffel's normalised energy, Sockeye's split key/value
projection with a context gate and a HAN pooling bridge), converted from their
state_dicts; the engine's greedy and beam search must equal each model's own decoder step
driven through the spec's search (tests/oracle_search.py)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import rnnsearch  # noqa: E402
from oracle_search import assert_same_results  # noqa: E402
from rnnsearch.convert.torch import convert_state_dict  # noqa: E402
from test_convert_torch import SRC, TGT, _oracle, _sources  # noqa: E402


class LocalP(nn.Module):
    """Luong et al. 2015 local-p as common PyTorch code writes it: p = S sigmoid(v_p
    tanh(W_p h)) with v_p an nn.Linear (bias included); the 2D+1 positions around round(p)
    of the zero-padded memory; general score h . W m; softmax, times the Gaussian."""
    D = 2

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(len(SRC), 8)
        self.enc = nn.GRU(8, 5, bidirectional=True, batch_first=True)
        self.temb = nn.Embedding(len(TGT), 8)
        self.cell = nn.GRUCell(8, 10)
        self.W = nn.Linear(10, 10, bias=False)
        self.Wp = nn.Linear(10, 6)
        self.vp = nn.Linear(6, 1)
        self.Wc = nn.Linear(20, 10, bias=False)
        self.out = nn.Linear(10, len(TGT))

    def encode(self, src):
        memory, _ = self.enc(self.emb(src))
        return memory, {"h": torch.zeros(1, 10)}

    def step(self, y, state, memory):
        h = self.cell(self.temb(y), state["h"])
        n, S, _ = memory.shape
        D = self.D
        p = S * torch.sigmoid(self.vp(torch.tanh(self.Wp(h)))).squeeze(1)
        padded = torch.cat([memory.new_zeros(n, D, 10), memory,
                            memory.new_zeros(n, D + 1, 10)], 1)
        weights, contexts = torch.zeros(n, S), []
        for i in range(n):
            c = round(float(p[i]))
            window = padded[i, c:c + 2 * D + 1]                  # positions c-D .. c+D
            a = torch.softmax(self.W(window) @ h[i], 0)
            position = torch.arange(c - D, c + D + 1).float()
            a = a * torch.exp(-(position - p[i]) ** 2 / (2 * (D / 2) ** 2))
            contexts.append(a @ window)
            inside = (position >= 0) & (position < S)
            weights[i, position[inside].long()] = a[inside]
        attentional = torch.tanh(self.Wc(torch.cat([torch.stack(contexts), h], 1)))
        return self.out(attentional), {"h": h}, weights

    MAPPING = {"encoder.embedding": "emb", "encoder.rnn": "enc", "decoder.embedding": "temb",
               "decoder.rnn": "cell", "attention.key": "W", "attention.position": "Wp",
               "attention.position.v": "vp", "decoder.attentional": "Wc",
               "decoder.output": "out"}
    CONFIG = {"encoder": {"embedding_size": 8, "cell": "gru", "hidden_size": 5,
                          "bidirectional": True},
              "attention": {"type": "local", "score": "general",
                            "local": {"mode": "predictive", "window": 2, "position_size": 6,
                                      "center": "round", "edges": "zero_pad"}},
              "decoder": {"type": "luong", "embedding_size": 8, "cell": "gru",
                          "hidden_size": 10}}
    PEAKED = "out"


class MoChA(nn.Module):
    """Chiu & Raffel 2018 at test time, Bahdanau ordering: from the previous position, the
    first j with sigmoid(g v/|v| . tanh(W s + U h_j + b) + v_b + r) >= 0.5 (v an
    nn.Linear(A, 1)); a softmax of the chunk energies over [j - 1, j]; zero context once
    nothing is chosen."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(len(SRC), 8)
        self.enc = nn.GRU(8, 6, batch_first=True)
        self.temb = nn.Embedding(len(TGT), 8)
        self.W = nn.Linear(9, 7, bias=False)
        self.U = nn.Linear(6, 7)
        self.v = nn.Linear(7, 1)
        self.g = nn.Parameter(torch.tensor([2.0]))
        self.r = nn.Parameter(torch.tensor([0.3]))
        self.chunk_W = nn.Linear(9, 4)
        self.chunk_U = nn.Linear(6, 4, bias=False)
        self.chunk_v = nn.Linear(4, 1)
        self.cell = nn.GRUCell(8 + 6, 9)
        self.out = nn.Linear(9 + 6, len(TGT))

    def encode(self, src):
        memory, _ = self.enc(self.emb(src))
        return memory, {"s": torch.zeros(1, 9), "t": torch.zeros(1, dtype=torch.long)}

    def step(self, y, state, memory):
        s, t = state["s"], state["t"]
        n, S, _ = memory.shape
        v = self.g * self.v.weight[0] / self.v.weight[0].norm()
        weights, contexts, chosen = torch.zeros(n, S), [], []
        for i in range(n):
            j = -1
            for k in range(int(t[i]), S) if t[i] >= 0 else ():
                e = v @ torch.tanh(self.W(s[i]) + self.U(memory[i, k])) + self.v.bias + self.r
                if torch.sigmoid(e) >= 0.5:
                    j = k
                    break
            chosen.append(j)
            if j < 0:
                contexts.append(memory.new_zeros(6))
                continue
            lo = max(0, j - 1)
            u = self.chunk_v(torch.tanh(self.chunk_W(s[i]) + self.chunk_U(memory[i, lo:j + 1])))
            a = torch.softmax(u[:, 0], 0)
            weights[i, lo:j + 1] = a
            contexts.append(a @ memory[i, lo:j + 1])
        context = torch.stack(contexts)
        s1 = self.cell(torch.cat([self.temb(y), context], 1), s)
        return self.out(torch.cat([s1, context], 1)), {"s": s1, "t": torch.tensor(chosen)}, \
            weights

    MAPPING = {"encoder.embedding": "emb", "encoder.rnn": "enc", "decoder.embedding": "temb",
               "decoder.rnn": "cell", "attention.query": "W", "attention.key": "U",
               "attention.v": "v", "attention.energy_gain": "g", "attention.energy_bias": "r",
               "attention.chunk.query": "chunk_W", "attention.chunk.key": "chunk_U",
               "attention.chunk.v": "chunk_v", "decoder.output": "out"}
    CONFIG = {"encoder": {"embedding_size": 8, "cell": "gru", "hidden_size": 6},
              "attention": {"type": "mocha", "score": "additive", "size": 7,
                            "mocha": {"chunk_size": 2, "size": 4}},
              "decoder": {"type": "bahdanau", "embedding_size": 8, "cell": "gru",
                          "hidden_size": 9, "readout_inputs": ["state", "context"]}}
    PEAKED = "out"


class KeyValuePooled(nn.Module):
    """Sockeye's split projection ([k; v] = W_kv h + b, general score q . k), Xu et al.'s
    gate beta = sigmoid(w . q + b) on the context, and HAN pooling (alpha = softmax(tanh(W
    h + b) . u_w)) bridged to the decoder: s_0 = tanh(W_s sum_j alpha_j h_j + b_s)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(len(SRC), 8)
        self.enc = nn.LSTM(8, 5, bidirectional=True, batch_first=True)
        self.Wh = nn.Linear(10, 6)
        self.u_w = nn.Parameter(torch.randn(6))
        self.init = nn.Linear(10, 12)
        self.temb = nn.Embedding(len(TGT), 8)
        self.cell = nn.GRUCell(8, 12)
        self.kv = nn.Linear(10, 12 + 7)
        self.gate = nn.Linear(12, 1)
        self.Wc = nn.Linear(7 + 12, 12)
        self.out = nn.Linear(12, len(TGT))

    def encode(self, src):
        memory, _ = self.enc(self.emb(src))
        alpha = torch.softmax(torch.tanh(self.Wh(memory)) @ self.u_w, 1)
        pooled = (alpha[:, :, None] * memory).sum(1)
        return memory, {"h": torch.tanh(self.init(pooled))}

    def step(self, y, state, memory):
        h = self.cell(self.temb(y), state["h"])
        keys, values = self.kv(memory).split([12, 7], dim=2)
        a = torch.softmax(torch.bmm(keys, h[:, :, None])[:, :, 0], 1)
        context = torch.sigmoid(self.gate(h)) * torch.bmm(a[:, None, :], values)[:, 0]
        attentional = torch.tanh(self.Wc(torch.cat([context, h], 1)))
        return self.out(attentional), {"h": h}, a

    MAPPING = {"encoder.embedding": "emb", "encoder.rnn": "enc", "decoder.embedding": "temb",
               "decoder.rnn": "cell", "encoder.pooling.projection": "Wh",
               "encoder.pooling.query": "u_w", "bridge": "init", "attention.key_value": "kv",
               "attention.gate": "gate", "decoder.attentional": "Wc", "decoder.output": "out"}
    CONFIG = {"encoder": {"embedding_size": 8, "cell": "lstm", "hidden_size": 5,
                          "bidirectional": True, "pooling": {"rows": 1, "size": 6}},
              "bridge": {"type": "pooling"},
              "attention": {"score": "general", "gate": True,
                            "key_value": {"value_size": 7}},
              "decoder": {"type": "luong", "embedding_size": 8, "cell": "gru",
                          "hidden_size": 12}}
    PEAKED = "out"


MODELS = {"local-p": LocalP, "mocha": MoChA, "key-value-pooled": KeyValuePooled}


@pytest.fixture(scope="module", params=sorted(MODELS))
def converted(request, tmp_path_factory):
    torch.manual_seed(0)
    model = MODELS[request.param]()
    with torch.no_grad():
        getattr(model, model.PEAKED).weight.mul_(4.0)
    model.eval()
    out = str(tmp_path_factory.mktemp(request.param) / "model")
    convert_state_dict(model.state_dict(), model.MAPPING, model.CONFIG, SRC, TGT, out)
    return model, rnnsearch.Translator(out)


@pytest.mark.parametrize("beam_size", [1, 5])
def test_engine_matches_the_torch_model(converted, beam_size):
    model, translator = converted
    sources = _sources(8)
    engine = translator._engine.translate(sources, beam_size=beam_size, return_attention=True,
                                          num_hypotheses=beam_size, max_length=20)
    for ids, results in zip(sources, engine):
        expected = _oracle(model, ids, beam_size)
        assert_same_results(results, expected)
        for (_, _, attention), (_, _, rows) in zip(results, expected):
            np.testing.assert_allclose(attention, np.asarray(rows).reshape(attention.shape),
                                       atol=1e-5)


def test_option_roles_are_checked(tmp_path):
    model = MoChA()
    mapping = dict(model.MAPPING)
    del mapping["attention.chunk.v"]
    with pytest.raises(rnnsearch.ModelError, match="lacks 'attention.chunk.v'"):
        convert_state_dict(model.state_dict(), mapping, model.CONFIG, SRC, TGT,
                           str(tmp_path / "a"))
    mapping = dict(model.MAPPING, **{"attention.chunk.v": "g"})
    with pytest.raises(rnnsearch.ModelError, match="attention.chunk.v.*1 values, expected 4"):
        convert_state_dict(model.state_dict(), mapping, model.CONFIG, SRC, TGT,
                           str(tmp_path / "b"))
    kv = KeyValuePooled()
    config = dict(kv.CONFIG, attention={"score": "general", "gate": True,
                                        "key_value": {"value_size": 6}})
    with pytest.raises(rnnsearch.ModelError, match="'attention.key_value'.*19 outputs"):
        convert_state_dict(kv.state_dict(), kv.MAPPING, config, SRC, TGT, str(tmp_path / "c"))
    mapping = dict(kv.MAPPING, **{"attention.position": "Wh"})
    with pytest.raises(rnnsearch.ModelError, match="attention.position.*not used"):
        convert_state_dict(kv.state_dict(), mapping, kv.CONFIG, SRC, TGT, str(tmp_path / "d"))
