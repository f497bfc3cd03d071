"""The stateful attention types against the toolkits that trained such models, on the
toolkits' own weights (fixtures made by tools/make_attention_fixtures.py from real runs of
ESPnet's attentions.py / decoders.py and SpeechBrain's attention.py):

- each toolkit attention module, its weights converted with `rnnsearch convert --from
  torch`'s roles, equals the reference's (rnnsearch.reference) step by step: contexts and
  weights within 1e-5 over several steps, each fed its own previous state;
- a model whose decoder is ESPnet's RNN Decoder with location-aware attention, converted as
  docs/convert-torch.md shows (its JSON files are read from that page), decodes in the
  engine exactly as the spec's search driving ESPnet's Decoder.score did: tokens identical,
  scores within 1e-4, attention within 1e-5, greedy and beam 5 (SpeechBrain's decoder:
  tests/test_speechbrain_decoder.py).
"""
import json
import os
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnsearch  # noqa: E402
from framework_fixtures import assert_decodes_as_fixture  # noqa: E402
from rnnsearch.convert.torch import convert_state_dict  # noqa: E402
from rnnsearch.reference import load_model_dir  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "attention")
DOCS = os.path.join(os.path.dirname(__file__), "..", "docs", "convert-torch.md")


@pytest.fixture(scope="module")
def modules():
    with open(os.path.join(FIXTURES, "modules.json")) as f:
        meta = json.load(f)
    return meta, dict(np.load(os.path.join(FIXTURES, "modules.npz")))


# ESPnet's attention types (initial_att's atype) -> the rnnsearch attention section and the
# role mapping of the module's parameters
def _espnet(meta):
    A, C, k, N = meta["adim"], meta["aconv_chans"], 2 * meta["aconv_filts"] + 1, meta["awin"]
    location = {"channels": C, "kernel_size": k}
    add = {"attention.key": "att.mlp_enc", "attention.query": "att.mlp_dec",
           "attention.v": "att.gvec"}
    loc = {**add, "attention.location.conv": "att.loc_conv",
           "attention.location.projection": "att.mlp_att"}
    base = {"score": "additive", "size": A, "scaling": 2.0}
    return {
        "espnet_add": ({"type": "global", **base}, add),
        "espnet_location": ({"type": "location", **base, "location": location}, loc),
        "espnet_location2d": ({"type": "location", **base, "location": {
            **location, "input": "history", "history": N}}, loc),
        "espnet_coverage_location": ({"type": "location", **base, "location": {
            **location, "input": "cumulative"}}, loc),
        "espnet_location_recurrent": (
            {"type": "location", **base, "location": {**location, "recurrent": True}},
            {**add, "attention.location.conv": "att.loc_conv",
             "attention.location.lstm": "att.att_lstm"}),
        "espnet_coverage": ({"type": "coverage", **base, "coverage": {"initial": "uniform"}},
                            {**add, "attention.coverage": "att.wvec"}),
        # AttForward and AttForwardTA score with ESPnet's default scaling 1.0
        "espnet_forward": ({"type": "forward", **base, "scaling": 1.0, "location": location},
                           loc),
        "espnet_forward_ta": ({"type": "forward", **base, "scaling": 1.0, "location": location,
                               "forward": {"transition_agent": True}},
                              {**loc, "attention.forward.transition": "att.mlp_ta"}),
    }


def _espnet_multi_head(meta):
    A, C, F, H = meta["adim"], meta["aconv_chans"], meta["aconv_filts"], meta["aheads"]
    heads = lambda module: [f"att.{module}.{h}" for h in range(H)]  # noqa: E731
    projected = {"attention.key": heads("mlp_k"), "attention.query": heads("mlp_q"),
                 "attention.heads.value": heads("mlp_v"), "attention.heads.output": "att.mlp_o"}
    additive = {**projected, "attention.v": heads("gvec")}
    located = {**additive, "attention.heads.location.conv": heads("loc_conv"),
               "attention.heads.location.projection": heads("mlp_att")}
    section = {"type": "multi_head", "size": A, "scaling": 1.0 / A ** 0.5,
               "multi_head": {"heads": H, "value_size": A}}
    location = {"channels": C, "kernel_size": 2 * F + 1}
    return {
        "espnet_dot": ({"type": "multi_head", "score": "tanh_dot", "size": A, "scaling": 2.0,
                        "multi_head": {"heads": 1}},
                       {"attention.key": "att.mlp_enc", "attention.query": "att.mlp_dec"}),
        "espnet_multi_head_dot": ({**section, "score": "tanh_dot"}, projected),
        "espnet_multi_head_add": ({**section, "score": "additive"}, additive),
        # multi_head_loc sharpens with its forward's default scaling 2.0
        "espnet_multi_head_loc": ({**section, "score": "additive", "scaling": 2.0,
                                   "location": location}, located),
        # multi_head_multi_res_loc: head h's kernel has aconv_filts * (h + 1) // aheads taps
        # each side
        "espnet_multi_head_multi_res_loc": (
            {**section, "score": "additive", "location": location,
             "multi_head": {"heads": H, "value_size": A, "kernel_sizes": [
                 2 * (F * (h + 1) // H) + 1 for h in range(H)]}}, located),
    }


def _reference_attention(meta, params, name, attention, roles, tmp_path):
    """The toolkit module's parameters converted (with a stand-in encoder and decoder
    around them) and loaded into the reference; returns its attention module."""
    E, H_e, H_d = meta["odim"], meta["eprojs"] // 2, meta["dunits"]
    torch.manual_seed(0)
    around = {"src": torch.nn.Embedding(6, E), "enc": torch.nn.LSTM(E, H_e, bidirectional=True),
              "tgt": torch.nn.Embedding(6, E),
              "cell": torch.nn.GRUCell(E + meta["eprojs"], H_d),
              "out": torch.nn.Linear(H_d, 6)}
    state = {f"{module}.{key}": value for module, m in around.items()
             for key, value in m.state_dict().items()}
    prefix = f"{name}/param/"
    state.update({"att." + key[len(prefix):]: value for key, value in params.items()
                  if key.startswith(prefix)})
    mapping = {"encoder.embedding": "src", "encoder.rnn": "enc", "decoder.embedding": "tgt",
               "decoder.rnn": "cell", "decoder.output": "out", **roles}
    config = {"encoder": {"embedding_size": E, "cell": "lstm", "hidden_size": H_e,
                          "bidirectional": True},
              "attention": attention,
              "decoder": {"type": "bahdanau", "embedding_size": E, "cell": "gru",
                          "hidden_size": H_d, "readout_inputs": ["state"]}}
    vocab = ["<pad>", "<unk>", "<s>", "</s>", "a", "b"]
    path = str(tmp_path / name)
    convert_state_dict(state, mapping, config, vocab, vocab, path)
    return load_model_dir(path)[0].attention


def _run(attention, memory, queries, previous_outputs):
    """Steps of the reference attention, each fed its own state (and, as the previous
    token's embedding, the toolkit's previous output)."""
    memory = torch.from_numpy(memory)[None]
    mask = torch.ones(memory.shape[:2], dtype=torch.bool)
    keys = attention.keys(memory)
    state = attention.initial_state(mask)
    contexts, weights = [], []
    for query, previous in zip(torch.from_numpy(queries), torch.from_numpy(previous_outputs)):
        context, w, state = attention.step(query[None], keys, memory, mask, state,
                                           embedding=previous[None])
        contexts.append(context[0])
        weights.append(w[0])
    return torch.stack(contexts).numpy(), torch.stack(weights).numpy()


@pytest.mark.parametrize("name", ["espnet_add", "espnet_location", "espnet_location2d",
                                  "espnet_location_recurrent", "espnet_coverage",
                                  "espnet_coverage_location", "espnet_forward",
                                  "espnet_forward_ta", "espnet_dot", "espnet_multi_head_dot",
                                  "espnet_multi_head_add", "espnet_multi_head_loc",
                                  "espnet_multi_head_multi_res_loc"])
@torch.no_grad()
def test_reference_equals_toolkit_module(modules, name, tmp_path):
    meta, params = modules
    attention, roles = {**_espnet(meta), **_espnet_multi_head(meta)}[name]
    reference = _reference_attention(meta, params, name, attention, roles, tmp_path)
    for u in range(len(meta["lengths"])):
        contexts, weights = _run(reference, params[f"{name}/{u}/memory"],
                                 params[f"{name}/{u}/queries"], params[f"{name}/{u}/out_prev"])
        expected = params[f"{name}/{u}/weights"]
        if expected.ndim == 3:  # every head's weights: rnnsearch reports their mean
            expected = expected.mean(axis=1)
        np.testing.assert_allclose(weights, expected, atol=1e-5)
        np.testing.assert_allclose(contexts, params[f"{name}/{u}/contexts"], atol=1e-5)


@torch.no_grad()
def test_speechbrain_location_weights(modules, tmp_path):
    """SpeechBrain's LocationAwareAttention scores as the format's location type (mlp_loc's
    bias included, scaling 1.0); its context is projected by mlp_out (the format's
    attention.context, tested end to end in test_speechbrain_decoder.py): the reference's
    context, projected with SpeechBrain's own mlp_out here, equals SpeechBrain's."""
    meta, params = modules
    name = "speechbrain_location"
    attention = {"type": "location", "score": "additive", "size": meta["adim"],
                 "location": {"channels": meta["aconv_chans"],
                              "kernel_size": 2 * meta["aconv_filts"] + 1}}
    roles = {"attention.key": "att.mlp_enc", "attention.query": "att.mlp_dec",
             "attention.v": "att.mlp_attn", "attention.location.conv": "att.conv_loc",
             "attention.location.projection": "att.mlp_loc"}
    kept = {k: v for k, v in params.items() if ".mlp_out." not in k}
    reference = _reference_attention(meta, kept, name, attention, roles, tmp_path)
    out_w, out_b = (params[f"{name}/param/mlp_out.{p}"] for p in ("weight", "bias"))
    for u in range(len(meta["lengths"])):
        contexts, weights = _run(reference, params[f"{name}/{u}/memory"],
                                 params[f"{name}/{u}/queries"], params[f"{name}/{u}/out_prev"])
        np.testing.assert_allclose(weights, params[f"{name}/{u}/weights"], atol=1e-5)
        np.testing.assert_allclose(contexts @ out_w.T + out_b, params[f"{name}/{u}/contexts"],
                                   atol=1e-5)


# ------------------------------------------------- the worked example: ESPnet's decoder

def _doc_json(name: str) -> dict:
    """The JSON block that follows the mention of `name` in docs/convert-torch.md."""
    with open(DOCS, encoding="utf-8") as f:
        text = f.read()
    match = re.search(re.escape(name) + r".*?```json\n(.*?)```", text, re.S)
    assert match, f"{name} not in docs/convert-torch.md"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def espnet_model(tmp_path_factory):
    with open(os.path.join(FIXTURES, "espnet_decoder.json")) as f:
        expected = json.load(f)
    arrays = np.load(os.path.join(FIXTURES, "espnet_decoder.npz"))
    work = tmp_path_factory.mktemp("espnet")
    torch.save({key[len("state/"):]: torch.from_numpy(arrays[key]) for key in arrays
                if key.startswith("state/")}, str(work / "model.pt"))
    for name in ("espnet-arch.json", "espnet-mapping.json"):
        with open(work / name, "w") as f:
            json.dump(_doc_json(name), f)
    for name, tokens in (("src.vocab", expected["source_tokens"]),
                         ("tgt.vocab", expected["target_tokens"])):
        (work / name).write_text("".join(t + "\n" for t in tokens))
    from rnnsearch.cli import main
    assert main(["convert", "--from", "torch", "--checkpoint", str(work / "model.pt"),
                 "--mapping", str(work / "espnet-mapping.json"),
                 "--config", str(work / "espnet-arch.json"),
                 "--source-vocab", str(work / "src.vocab"),
                 "--target-vocab", str(work / "tgt.vocab"), "-o", str(work / "espnet-model")]) == 0
    return rnnsearch.Translator(str(work / "espnet-model")), expected, arrays


@pytest.mark.parametrize("mode,beam,nbest", [("greedy", 1, 1), ("beam5", 5, 3)])
def test_espnet_decoder_decodes_as_espnet(espnet_model, mode, beam, nbest):
    translator, expected, arrays = espnet_model
    assert_decodes_as_fixture(translator, expected, arrays, mode, beam, nbest)
