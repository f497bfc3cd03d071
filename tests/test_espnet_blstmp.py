"""ESPnet's own `blstmp` encoder (espnet 202511, Encoder('blstmp'): a BLSTM per layer, a
projection after each (tanh between layers), strided subsampling with ESPnet's length
count) under an attention speller: the fixture (tests/fixtures/features/espnet_blstmp.npz,
made by `tools/make_feature_fixtures.py --espnet` in a virtualenv with ESPnet installed)
holds the weights, held-out utterances and the results of the spec's search driving the
speller over ESPnet's encoder output. The engine, with the weights converted by
`convert --from torch` (encoder.rnn = birnn0.., encoder.projection = bt0..), must give the
same tokens (greedy, beam 5 with 5 hypotheses), scores within 1e-4 and attention within 1e-5
— which also checks that the memory has ESPnet's length ((L + 1) // f after a layer)."""
import json
import os

import numpy as np
import pytest

import feature_tasks as tasks
import rnnsearch
from rnnsearch.convert.torch import convert_state_dict

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "features",
                       "espnet_blstmp")
with open(FIXTURE + ".json") as f:
    INFO = json.load(f)


def _mapping(layers):
    prefix = "enc.enc.0"
    return {"encoder.rnn": [f"{prefix}.birnn{i}" for i in range(layers)],
            "encoder.projection": [f"{prefix}.bt{i}" for i in range(layers)],
            "decoder.embedding": "speller.embedding", "attention.key": "speller.W",
            "attention.query": "speller.U", "attention.v": "speller.v",
            "decoder.rnn": "speller.cell", "decoder.output": "speller.out"}


def _config(subsample):
    return {"source": {"kind": "features", "feature_size": tasks.BANDS, "vocabulary": None},
            "encoder": {"cell": "lstm", "hidden_size": INFO["eunits"],
                        "num_layers": INFO["elayers"], "bidirectional": True,
                        "subsample": subsample, "subsample_mode": "stride",
                        "projection": {"size": INFO["eprojs"], "activation": "tanh"}},
            "attention": {"score": "additive", "size": 32},
            "decoder": {"type": "bahdanau", "embedding_size": 16, "cell": "lstm",
                        "hidden_size": 48, "readout_inputs": ["state", "context"]}}


@pytest.fixture(scope="module", params=sorted(INFO["models"]))
def converted(request, tmp_path_factory):
    name = request.param
    data = np.load(FIXTURE + ".npz")
    prefix = f"{name}/param/"
    state = {k[len(prefix):]: data[k] for k in data.files if k.startswith(prefix)}
    out = str(tmp_path_factory.mktemp(name) / "model")
    convert_state_dict(state, _mapping(INFO["elayers"]),
                       _config(INFO["models"][name]["subsample"]), None,
                       tasks.DIGITS_VOCAB, out)
    return name, data, rnnsearch.Translator(out)


@pytest.mark.parametrize("beam_size", [1, 5])
def test_engine_matches_espnet(converted, beam_size):
    name, data, translator = converted
    frames = [data[f"{name}/frames/{u}"] for u in range(INFO["utterances"])]
    results = translator.translate_features(frames, beam_size=beam_size,
                                            num_hypotheses=beam_size, max_decoding_length=20,
                                            return_scores=True, return_attention=True)
    vocab = translator.target_vocab.ids
    for u, result in enumerate(results):
        key = f"{name}/beam{beam_size}/{u}"
        count = len({k.split("/")[3] for k in data.files if k.startswith(key + "/")})
        assert len(result.hypotheses) == count
        memory_length = data[f"{name}/memory/{u}"].shape[0]
        for k in range(count):
            assert [vocab[t] for t in result.hypotheses[k]] == \
                list(data[f"{key}/{k}/tokens"]), (u, k)
            assert result.scores[k] == pytest.approx(float(data[f"{key}/{k}/score"]),
                                                     rel=1e-4, abs=1e-4)
            assert result.attention[k].shape[1] == memory_length
            expected = data[f"{key}/{k}/attention"]
            if not result.hypotheses[k]:   # an empty hypothesis has no attention rows
                assert result.attention[k].shape[0] == expected.size == 0
                continue
            np.testing.assert_allclose(result.attention[k], expected, atol=1e-5)
