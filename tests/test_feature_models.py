"""Captioning and speech-style PyTorch models over feature sources, written as their
recipes write them (tests/feature_models.py) and trained small on synthetic tasks
(tests/feature_tasks.py) by tools/make_feature_fixtures.py: converted with
`convert --from torch` (a role mapping, no rnnsearch code in the models) and decoded by the
engine, against the user's own decoder step driven through the spec's search
(tests/oracle_search.py): tokens identical (greedy and beam 5), scores within 1e-4,
attention within 1e-5.

- Show, Attend and Tell as the widely used PyTorch tutorial writes it (h0, c0 from linear
  layers over the mean annotation, relu scores, a sigmoid gate per context dimension, the
  output from h), and with Xu et al.'s own choices (tanh scores, a scalar gate, the deep
  output L_o tanh(E y + L_h h + L_z z)), naming coloured shapes in a grid of regions.
- Listen, Attend and Spell: a BLSTM and two pyramidal BLSTM layers (frame pairs
  concatenated, lengths halved) under an attention speller, transcribing digit-like
  spectral patterns.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import feature_tasks as tasks  # noqa: E402
import rnnsearch  # noqa: E402
from feature_models import ListenAttendSpell, ShowAttendTell  # noqa: E402
from oracle_search import assert_same_results, beam_search  # noqa: E402
from rnnsearch.convert.torch import convert_state_dict  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures", "features")
BOS, EOS = 2, 3
MAX_LENGTH = 20

SAT_MAPPING = {"decoder.embedding": "embedding", "bridge": "init_h", "bridge.cell": "init_c",
               "attention.key": "attention.encoder_att",
               "attention.query": "attention.decoder_att",
               "attention.v": "attention.full_att", "attention.gate": "f_beta",
               "decoder.rnn": "decode_step", "decoder.output": "fc"}
SAT_CONFIG = {
    "source": {"kind": "features", "feature_size": tasks.REGION_FEATURES, "vocabulary": None},
    "encoder": {"num_layers": 0},
    "bridge": {"type": "mean", "activation": "identity", "lstm_cell": "bridged"},
    "attention": {"score": "additive", "size": 24, "score_activation": "relu", "gate": True,
                  "gate_per_dimension": True},
    "decoder": {"type": "bahdanau", "embedding_size": 16, "cell": "lstm", "hidden_size": 32,
                "readout_inputs": ["state"]}}
SAT_XU_MAPPING = dict(SAT_MAPPING, **{
    "decoder.readout": {"sum": {"state": "L_h", "context": "L_z", "embedding": "identity"}},
    "decoder.output": "L_o"})
SAT_XU_CONFIG = dict(SAT_CONFIG, attention={"score": "additive", "size": 24, "gate": True},
                     decoder={"type": "bahdanau", "embedding_size": 16, "cell": "lstm",
                              "hidden_size": 32, "readout": "tanh", "readout_size": 16})
LAS_MAPPING = {"encoder.rnn": ["listener.bottom", "listener.pyramid.0", "listener.pyramid.1"],
               "decoder.embedding": "speller.embedding", "attention.key": "speller.W",
               "attention.query": "speller.U", "attention.v": "speller.v",
               "decoder.rnn": "speller.cell", "decoder.output": "speller.out"}
LAS_CONFIG = {
    "source": {"kind": "features", "feature_size": tasks.BANDS, "vocabulary": None},
    "encoder": {"cell": "lstm", "hidden_size": 24, "num_layers": 3, "bidirectional": True,
                "subsample": [1, 2, 2, 1], "subsample_mode": "concat"},
    "attention": {"score": "additive", "size": 32},
    "decoder": {"type": "bahdanau", "embedding_size": 16, "cell": "lstm", "hidden_size": 48,
                "readout_inputs": ["state", "context"]}}

SAT_OPTIONS = {"show_attend_tell": dict(gate="vector", output="h", attention_activation="relu"),
               "show_attend_tell_xu": dict(gate="scalar", output="deep",
                                           attention_activation="tanh")}
CASES = {"show_attend_tell": (SAT_MAPPING, SAT_CONFIG, "shapes", tasks.SHAPES_VOCAB),
         "show_attend_tell_xu": (SAT_XU_MAPPING, SAT_XU_CONFIG, "shapes", tasks.SHAPES_VOCAB),
         "las": (LAS_MAPPING, LAS_CONFIG, "digits", tasks.DIGITS_VOCAB)}


def _user_model(name):
    if name == "las":
        model = ListenAttendSpell(len(tasks.DIGITS_VOCAB), tasks.BANDS)
    else:
        model = ShowAttendTell(len(tasks.SHAPES_VOCAB), tasks.REGION_FEATURES,
                               **SAT_OPTIONS[name])
    state = torch.load(os.path.join(FIXTURES, f"{name}.pt"), weights_only=True)
    model.load_state_dict(state)
    return model.eval(), state


@torch.no_grad()
def _oracle(name, model, x, beam_size):
    """The user's model: its encoder, then its decoder step through the spec's search."""
    x = torch.from_numpy(x)[None]
    if name == "las":
        memory, _ = model.encode(x, torch.tensor([x.size(1)]))
        mask = torch.ones((1, memory.size(1)), dtype=torch.bool)
        initial = model.speller.initial_state(memory)

        def run(tokens, h, c, n):
            return model.speller.step(tokens, h, c, memory.expand(n, -1, -1),
                                      mask.expand(n, -1))
    else:
        memory = x
        initial = model.init_hidden_state(memory)

        def run(tokens, h, c, n):
            return model.step(tokens, h, c, memory.expand(n, -1, -1))

    def step(states, tokens):
        n = len(states)
        h = torch.cat([s[0] for s in states])
        c = torch.cat([s[1] for s in states])
        logits, h, c, alpha = run(torch.tensor(tokens), h, c, n)
        log_probs = torch.log_softmax(logits.double(), -1).float().numpy()
        return log_probs, [(h[i:i + 1], c[i:i + 1]) for i in range(n)], alpha.numpy()

    return beam_search(step, initial, BOS, EOS, beam_size=beam_size,
                       num_hypotheses=beam_size, max_length=MAX_LENGTH)


@pytest.fixture(scope="module", params=sorted(CASES))
def converted(request, tmp_path_factory):
    name = request.param
    mapping, config, task, vocab = CASES[name]
    model, state = _user_model(name)
    out = str(tmp_path_factory.mktemp(name) / "model")
    convert_state_dict(state, mapping, config, None, vocab, out)
    held_out = tasks.dataset(task, 8, seed=1)
    return name, model, rnnsearch.Translator(out), held_out


@pytest.mark.parametrize("beam_size", [1, 5])
def test_engine_matches_the_user_model(converted, beam_size):
    name, model, translator, held_out = converted
    arrays = [x for x, _ in held_out]
    results = translator.translate_features(arrays, beam_size=beam_size,
                                            num_hypotheses=beam_size,
                                            max_decoding_length=MAX_LENGTH,
                                            return_scores=True, return_attention=True)
    vocab = translator.target_vocab.ids
    for x, result in zip(arrays, results):
        expected = _oracle(name, model, x, beam_size)
        engine = [([vocab[t] for t in h], s, None)
                  for h, s in zip(result.hypotheses, result.scores)]
        assert_same_results(engine, expected)
        for attention, (_, _, reference) in zip(result.attention, expected):
            np.testing.assert_allclose(attention, reference, atol=1e-5)


def test_the_models_learned_their_task(converted):
    """The fixtures are trained models, not noise: the engine's greedy output is exactly
    right for most held-out inputs (features.json records the rate over 200)."""
    name, _, translator, held_out = converted
    results = translator.translate_features([x for x, _ in held_out], beam_size=1)
    right = sum(r.hypotheses[0] == words for r, (_, words) in zip(results, held_out))
    assert right >= len(held_out) // 2, (name, right)
    with open(os.path.join(FIXTURES, "features.json")) as f:
        assert json.load(f)[name]["held_out_greedy_exact"] >= 0.5


def test_cli_converts_without_a_source_vocabulary(tmp_path):
    """`rnnsearch convert --from torch` of a features model: no --source-vocab."""
    for name, value in (("mapping.json", SAT_XU_MAPPING), ("arch.json", SAT_XU_CONFIG)):
        (tmp_path / name).write_text(json.dumps(value))
    (tmp_path / "target.txt").write_text("\n".join(tasks.SHAPES_VOCAB) + "\n")
    out = tmp_path / "model"
    subprocess.run([sys.executable, "-m", "rnnsearch", "convert", "--from", "torch",
                    "--checkpoint", os.path.join(FIXTURES, "show_attend_tell_xu.pt"),
                    "--mapping", str(tmp_path / "mapping.json"),
                    "--config", str(tmp_path / "arch.json"),
                    "--target-vocab", str(tmp_path / "target.txt"), "--output", str(out)],
                   check=True, capture_output=True, text=True)
    assert not os.path.exists(out / "source_vocabulary.txt")
    x, words = tasks.dataset("shapes", 1, seed=5)[0]
    np.save(tmp_path / "image.npy", x)
    run = subprocess.run([sys.executable, "-m", "rnnsearch", "translate", "-m", str(out),
                          "--features", str(tmp_path / "image.npy"), "--beam-size", "1"],
                         check=True, capture_output=True, text=True)
    expected = rnnsearch.Translator(str(out)).translate_features([x], beam_size=1)[0]
    assert run.stdout == " ".join(expected.hypotheses[0]) + "\n"
