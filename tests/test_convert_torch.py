"""`rnnsearch convert --from torch`: user-style PyTorch seq2seq models saved as plain
state_dicts, converted with a role mapping and an architecture JSON; the engine's greedy
and beam search must equal the user's own decoder step driven through the spec's search
(tests/oracle_search.py)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import rnnsearch  # noqa: E402
from oracle_search import assert_same_results, beam_search  # noqa: E402
from rnnsearch.cli import main  # noqa: E402
from rnnsearch.convert.torch import convert_state_dict  # noqa: E402

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
SRC = SPECIALS + [f"s{i}" for i in range(20)]
TGT = SPECIALS + [f"t{i}" for i in range(24)]
BOS, EOS = 2, 3
MAX_LENGTH = 20


class Bahdanau(nn.Module):
    """biGRU encoder, s_0 = tanh(W h_backward), GRUCell reading [context; embedding],
    additive attention, maxout readout over [embedding; state; context]."""

    def __init__(self):
        super().__init__()
        self.src_emb = nn.Embedding(len(SRC), 8)
        self.enc = nn.GRU(8, 6, bidirectional=True, batch_first=True)
        self.init = nn.Linear(6, 10)
        self.tgt_emb = nn.Embedding(len(TGT), 8)
        self.W = nn.Linear(12, 9)
        self.U = nn.Linear(10, 9, bias=False)
        self.v = nn.Linear(9, 1, bias=False)
        self.cell = nn.GRUCell(12 + 8, 10)
        self.readout = nn.Linear(8 + 10 + 12, 14)
        self.out = nn.Linear(7, len(TGT))

    def encode(self, src):
        memory, h = self.enc(self.src_emb(src))
        return memory, {"s": torch.tanh(self.init(h[1]))}

    def step(self, y, state, memory):
        s = state["s"]
        a = torch.softmax(self.v(torch.tanh(self.U(s).unsqueeze(1) + self.W(memory))).squeeze(2), 1)
        context = torch.bmm(a.unsqueeze(1), memory).squeeze(1)
        emb = self.tgt_emb(y)
        s1 = self.cell(torch.cat([context, emb], 1), s)
        t = self.readout(torch.cat([emb, s1, context], 1))
        t = t.view(t.size(0), -1, 2).max(2)[0]
        return self.out(t), {"s": s1}, a

    MAPPING = {"encoder.embedding": "src_emb", "encoder.rnn": "enc",
               "bridge": {"module": "init", "concat_order": ["backward"]},
               "decoder.embedding": "tgt_emb", "attention.key": "W", "attention.query": "U",
               "attention.v": "v",
               "decoder.rnn": {"module": "cell", "concat_order": ["context", "embedding"]},
               "decoder.readout": {"module": "readout",
                                   "concat_order": ["embedding", "state", "context"]},
               "decoder.output": "out"}
    CONFIG = {"encoder": {"embedding_size": 8, "cell": "gru", "hidden_size": 6,
                          "bidirectional": True},
              "bridge": {"type": "dense", "activation": "tanh"},
              "attention": {"score": "additive", "size": 9},
              "decoder": {"type": "bahdanau", "embedding_size": 8, "cell": "gru",
                          "hidden_size": 10, "readout": "maxout", "readout_size": 14}}
    PEAKED = "out"


class Luong(nn.Module):
    """OpenNMT-py-like: 2-layer biLSTM, final states of the directions concatenated, a
    2-layer nn.LSTM decoder reading [feed; embedding], general attention with the query
    projected, attentional layer over [state; context]."""

    def __init__(self):
        super().__init__()
        self.emb_src = nn.Embedding(len(SRC), 8)
        self.encoder = nn.LSTM(8, 6, num_layers=2, bidirectional=True, batch_first=True)
        self.emb_tgt = nn.Embedding(len(TGT), 8)
        self.decoder = nn.LSTM(12 + 8, 12, num_layers=2)
        self.attn_in = nn.Linear(12, 12, bias=False)
        self.attn_out = nn.Linear(24, 12, bias=False)
        self.generator = nn.Linear(12, len(TGT))

    def encode(self, src):
        memory, (h, c) = self.encoder(self.emb_src(src))
        merge = lambda s: torch.cat([s[0::2], s[1::2]], 2)  # noqa: E731
        return memory, {"h": merge(h), "c": merge(c), "feed": torch.zeros(1, 12)}

    def step(self, y, state, memory):
        x = torch.cat([state["feed"], self.emb_tgt(y)], 1).unsqueeze(0)
        o, (h, c) = self.decoder(x, (state["h"], state["c"]))
        q = o[0]
        a = torch.softmax(torch.bmm(memory, self.attn_in(q).unsqueeze(2)).squeeze(2), -1)
        context = torch.bmm(a.unsqueeze(1), memory).squeeze(1)
        feed = torch.tanh(self.attn_out(torch.cat([q, context], 1)))
        return torch.log_softmax(self.generator(feed), -1), {"h": h, "c": c, "feed": feed}, a

    MAPPING = {"encoder.embedding": "emb_src", "encoder.rnn": "encoder",
               "decoder.embedding": "emb_tgt",
               "decoder.rnn": {"module": "decoder", "concat_order": ["feed", "embedding"]},
               "attention.query": "attn_in",
               "decoder.attentional": {"module": "attn_out",
                                       "concat_order": ["state", "context"]},
               "decoder.output": "generator"}
    CONFIG = {"encoder": {"embedding_size": 8, "cell": "lstm", "hidden_size": 6,
                          "num_layers": 2, "bidirectional": True},
              "bridge": {"type": "last", "lstm_cell": "bridged"},
              "attention": {"score": "general"},
              "decoder": {"type": "luong", "embedding_size": 8, "cell": "lstm",
                          "hidden_size": 12, "num_layers": 2, "input_feeding": True}}
    PEAKED = "generator"


class ConcatScore(nn.Module):
    """GRU encoder, decoder from zeros (GRUCell), Luong's concat score over [memory; query],
    logits from [state; context] without an attentional layer."""

    def __init__(self):
        super().__init__()
        self.se = nn.Embedding(len(SRC), 8)
        self.rnn = nn.GRU(8, 10, batch_first=True)
        self.te = nn.Embedding(len(TGT), 8)
        self.cell = nn.GRUCell(8, 10)
        self.Wa = nn.Linear(20, 7)
        self.va = nn.Parameter(torch.randn(7))
        self.proj = nn.Linear(20, len(TGT))

    def encode(self, src):
        memory, _ = self.rnn(self.se(src))
        return memory, {"h": torch.zeros(1, 10)}

    def step(self, y, state, memory):
        h = self.cell(self.te(y), state["h"])
        pair = torch.cat([memory, h.unsqueeze(1).expand(-1, memory.size(1), -1)], 2)
        a = torch.softmax(torch.tanh(self.Wa(pair)) @ self.va, 1)
        context = torch.bmm(a.unsqueeze(1), memory).squeeze(1)
        return self.proj(torch.cat([h, context], 1)), {"h": h}, a

    MAPPING = {"encoder.embedding": "se", "encoder.rnn": "rnn", "decoder.embedding": "te",
               "decoder.rnn": "cell",
               "attention.concat": {"module": "Wa", "concat_order": ["memory", "query"]},
               "attention.v": "va",
               "decoder.output": {"module": "proj", "concat_order": ["state", "context"]}}
    CONFIG = {"encoder": {"embedding_size": 8, "cell": "gru", "hidden_size": 10},
              "attention": {"score": "additive", "size": 7},
              "decoder": {"type": "luong", "embedding_size": 8, "cell": "gru",
                          "hidden_size": 10, "attentional_layer": False}}
    PEAKED = "proj"


MODELS = {"bahdanau": Bahdanau, "luong": Luong, "concat": ConcatScore}


def _model(kind, seed=0):
    torch.manual_seed(seed)
    model = MODELS[kind]()
    with torch.no_grad():
        getattr(model, model.PEAKED).weight.mul_(4.0)
    return model.eval()


def _oracle(model, ids, beam_size):
    """The user's model decoding one sentence with the spec's search."""
    with torch.no_grad():
        memory, state = model.encode(torch.tensor([ids]))

        def step(states, tokens):
            n = len(states)
            batch = {k: torch.cat([s[k] for s in states], 1 if states[0][k].dim() == 3 else 0)
                     for k in states[0]}
            logits, new, a = model.step(torch.tensor(tokens), batch, memory.expand(n, -1, -1))
            log_probs = torch.log_softmax(logits.double(), -1).float().numpy()
            out = [{k: (v[:, i:i + 1] if v.dim() == 3 else v[i:i + 1]) for k, v in new.items()}
                   for i in range(n)]
            return log_probs, out, a.numpy()

        return beam_search(step, state, BOS, EOS, beam_size=beam_size,
                           num_hypotheses=beam_size, max_length=MAX_LENGTH)


def _sources(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return [list(rng.integers(4, len(SRC), rng.integers(1, 15))) for _ in range(n)]


@pytest.fixture(scope="module", params=sorted(MODELS))
def converted(request, tmp_path_factory):
    kind = request.param
    model = _model(kind)
    out = str(tmp_path_factory.mktemp(kind) / "model")
    convert_state_dict(model.state_dict(), model.MAPPING, model.CONFIG, SRC, TGT, out)
    return model, rnnsearch.Translator(out)


@pytest.mark.parametrize("beam_size", [1, 5])
def test_engine_matches_the_torch_model(converted, beam_size):
    model, translator = converted
    sources = _sources()
    engine = translator._engine.translate(sources, beam_size=beam_size,
                                          num_hypotheses=beam_size, max_length=MAX_LENGTH)
    for ids, results in zip(sources, engine):
        assert_same_results(results, _oracle(model, ids, beam_size))


def _files(tmp_path, kind="bahdanau", mapping=None, config=None, wrap=False):
    model = _model(kind)
    checkpoint = tmp_path / "model.pt"
    torch.save({"model": model.state_dict(), "epoch": 3} if wrap else model.state_dict(),
               checkpoint)
    (tmp_path / "mapping.json").write_text(json.dumps(mapping or model.MAPPING))
    (tmp_path / "arch.json").write_text(json.dumps(config or model.CONFIG))
    (tmp_path / "src.txt").write_text("\n".join(SRC) + "\n")
    (tmp_path / "tgt.txt").write_text("\n".join(TGT) + "\n")
    return model, ["convert", "--from", "torch", "--checkpoint", str(checkpoint),
                   "--mapping", str(tmp_path / "mapping.json"), "--config",
                   str(tmp_path / "arch.json"), "--source-vocab", str(tmp_path / "src.txt"),
                   "--target-vocab", str(tmp_path / "tgt.txt")]


def test_cli_conversion(tmp_path):
    model, args = _files(tmp_path, "luong", wrap=True)
    out = str(tmp_path / "model")
    assert main(args + ["--source-add-eos", "-o", out]) == 0
    translator = rnnsearch.Translator(out)
    assert translator.config["source"]["add_eos"] is True
    assert translator.config["decoder"]["input_feeding"] is True
    ids = _sources(3)
    for src, results in zip(ids, translator._engine.translate(ids, beam_size=3,
                                                              num_hypotheses=3,
                                                              max_length=MAX_LENGTH)):
        assert_same_results(results, _oracle(model, src, 3))


def test_cli_help_lists_options():
    done = subprocess.run([sys.executable, "-m", "rnnsearch", "convert", "--from", "torch",
                           "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    for option in ("--checkpoint", "--mapping", "--config", "--source-vocab", "--target-vocab",
                   "--state-dict-key", "--eos-token"):
        assert option in done.stdout


def test_missing_mapping_entry(tmp_path, capsys):
    mapping = dict(Bahdanau.MAPPING)
    del mapping["decoder.readout"]
    _, args = _files(tmp_path, mapping=mapping)
    assert main(args + ["-o", str(tmp_path / "m")]) == 1
    assert "the mapping lacks 'decoder.readout' (readout 'maxout')" in capsys.readouterr().err
    assert not (tmp_path / "m" / "config.json").exists()


@pytest.mark.parametrize("change, message", [
    ({"decoder.output": "generator"}, "no tensor 'generator.weight'"),
    ({"decoder.rnn": {"module": "cell", "concat_order": ["context", "embedding", "feed"]}},
     "concat_order"),
    ({"bridge.cell": "init"}, r"role\(s\) \['bridge.cell'\] are not used"),
    ({"decoder.readout": {"module": "readout", "concat_order": ["state", "context"]}},
     "reads 30 inputs but concat_order"),
    ({"attentional": "x"}, "unknown role"),
])
def test_bad_mappings(tmp_path, change, message):
    model = _model("bahdanau")
    with pytest.raises(rnnsearch.ModelError, match=message):
        convert_state_dict(model.state_dict(), {**model.MAPPING, **change}, model.CONFIG,
                           SRC, TGT, str(tmp_path / "m"))


def test_unused_tensors_are_refused(tmp_path):
    model = _model("luong")
    config = json.loads(json.dumps(model.CONFIG))
    config["decoder"]["num_layers"] = 1   # the checkpoint's decoder has two
    config["bridge"]["from"] = "top_layer"
    with pytest.raises(rnnsearch.ModelError, match="weight_ih_l1"):
        convert_state_dict(model.state_dict(), model.MAPPING, config, SRC, TGT,
                           str(tmp_path / "m"))


def test_bridge_over_all_layers_is_refused(tmp_path):
    model = _model("bahdanau")
    config = json.loads(json.dumps(model.CONFIG))
    config["bridge"].update({"type": "dense", "from": "all_layers"})
    with pytest.raises(rnnsearch.ModelError, match="bridge.from = 'all_layers'"):
        convert_state_dict(model.state_dict(), model.MAPPING, config, SRC, TGT,
                           str(tmp_path / "m"))


def test_vocabulary_and_shape_mismatches(tmp_path):
    model = _model("bahdanau")
    with pytest.raises(rnnsearch.ModelError, match="target vocabulary has 27 tokens but the "
                                                   "target embedding has 28 rows"):
        convert_state_dict(model.state_dict(), model.MAPPING, model.CONFIG, SRC, TGT[:-1],
                           str(tmp_path / "m"))
    config = json.loads(json.dumps(model.CONFIG))
    config["attention"]["size"] = 8
    with pytest.raises(rnnsearch.ModelError, match="attention.key.weight"):
        convert_state_dict(model.state_dict(), model.MAPPING, config, SRC, TGT,
                           str(tmp_path / "m"))


def test_partial_sections_in_the_architecture_file_merge_with_the_options(tmp_path, capsys):
    """{"source": {"per_word": true}} in arch.json used to replace the whole section and drop
    --source-add-eos, --source-tokenizer and --lowercase; now both are kept, field by
    field, and a field set both ways is refused by name."""
    model, args = _files(tmp_path, "luong")
    arch = dict(model.CONFIG, source={"per_word": True},
                special_tokens={"pad": "<pad>", "unk": "<unk>", "bos": "<s>", "eos": "</s>"})
    (tmp_path / "arch.json").write_text(json.dumps(arch))
    out = str(tmp_path / "merged")
    assert main(args + ["--source-add-eos", "--source-tokenizer", "chars", "--lowercase",
                        "--target-tokenizer", "chars", "-o", out]) == 0
    source = rnnsearch.Translator(out).config["source"]
    assert source["per_word"] is True and source["add_eos"] is True
    assert source["tokenizer"] == "chars" and source["lowercase"] is True
    assert source["tokenizer_guessed"] is False

    arch["source"] = {"per_word": True, "tokenizer": "whitespace"}
    (tmp_path / "arch.json").write_text(json.dumps(arch))
    capsys.readouterr()
    assert main(args + ["--source-tokenizer", "chars", "-o", str(tmp_path / "clash")]) == 1
    err = capsys.readouterr().err
    assert "source.tokenizer = 'whitespace'" in err and "--source-tokenizer says 'chars'" in err
    assert not os.path.exists(tmp_path / "clash")
    # the same value on both sides is no clash; a tokenizer nobody named is marked guessed
    with pytest.warns(UserWarning, match="target tokenization is a guess"):
        assert main(args + ["--source-tokenizer", "whitespace", "-o",
                            str(tmp_path / "same")]) == 0
    config = rnnsearch.Translator(str(tmp_path / "same")).config
    assert config["target"]["tokenizer_guessed"] is True
    assert config["source"]["tokenizer_guessed"] is False
