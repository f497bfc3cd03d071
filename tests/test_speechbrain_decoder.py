"""A model with SpeechBrain's AttentionalRNNDecoder and LocationAwareAttention (projected
context fed back to layer 0, the new top state as the query, proj([c; s]) without
activation), trained with SpeechBrain's decoder and decoded by the spec's search driving its
forward_step (tests/fixtures/attention, tools/make_attention_fixtures.py), converted with
`convert --from torch`: the engine's greedy and beam-5 output is the same — tokens
identical, scores within 1e-4, attention within 1e-5."""
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnsearch  # noqa: E402
from framework_fixtures import assert_decodes_as_fixture  # noqa: E402
from rnnsearch.convert.torch import convert_state_dict  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "attention")

SPEECHBRAIN_MAPPING = {
    "encoder.embedding": "embed", "encoder.rnn": "enc", "decoder.embedding": "tgt_embed",
    "decoder.rnn": ["dec.rnn.rnn_cells.0", "dec.rnn.rnn_cells.1"],
    "attention.key": "dec.attn.mlp_enc", "attention.query": "dec.attn.mlp_dec",
    "attention.v": "dec.attn.mlp_attn", "attention.location.conv": "dec.attn.conv_loc",
    "attention.location.projection": "dec.attn.mlp_loc", "attention.context": "dec.attn.mlp_out",
    "decoder.attentional": "dec.proj", "decoder.output": "fc"}


def speechbrain_arch():
    return {"special_tokens": {"pad": "<pad>", "unk": "<unk>", "bos": "<sos/eos>",
                               "eos": "<sos/eos>"},
            "encoder": {"embedding_size": 8, "cell": "lstm", "hidden_size": 16,
                        "bidirectional": True},
            "attention": {"type": "location", "score": "additive", "size": 10,
                          "context_size": 10, "location": {"channels": 3, "kernel_size": 5}},
            "decoder": {"type": "luong", "embedding_size": 8, "cell": "lstm", "hidden_size": 24,
                        "num_layers": 2, "input_feeding": True, "feed": "context",
                        "attentional_activation": "identity"}}


@pytest.fixture(scope="module")
def speechbrain_model(tmp_path_factory):
    with open(os.path.join(FIXTURES, "speechbrain_decoder.json")) as f:
        expected = json.load(f)
    arrays = np.load(os.path.join(FIXTURES, "speechbrain_decoder.npz"))
    state = {key[len("state/"):]: arrays[key] for key in arrays if key.startswith("state/")}
    path = str(tmp_path_factory.mktemp("speechbrain") / "model")
    convert_state_dict(state, SPEECHBRAIN_MAPPING, speechbrain_arch(),
                       expected["source_tokens"], expected["target_tokens"], path)
    return rnnsearch.Translator(path), expected, arrays


@pytest.mark.parametrize("mode,beam,nbest", [("greedy", 1, 1), ("beam5", 5, 3)])
def test_speechbrain_decoder_decodes_as_speechbrain(speechbrain_model, mode, beam, nbest):
    translator, expected, arrays = speechbrain_model
    assert_decodes_as_fixture(translator, expected, arrays, mode, beam, nbest)
