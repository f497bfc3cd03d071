"""Attention that carries state (location-aware, coverage) and the decode-time attention
constraint: the engine against the PyTorch reference (rnnsearch.reference, written from the
papers' equations) on sources of length 1..100, greedy and beam 5 — tokens identical,
scores within 1e-4, attention within 1e-5 — a batch bit for bit its sentences one by one,
and the configuration checks."""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnsearch  # noqa: E402
from rnnsearch.errors import ModelError  # noqa: E402
from rnnsearch.model_spec import normalize_config  # noqa: E402
from rnnsearch.random_model import vocabularies  # noqa: E402
from rnnsearch.reference import export_model_dir, random_model  # noqa: E402
from rnnsearch.reference import translate as reference_translate  # noqa: E402

V_SOURCE, V_TARGET = 30, 25
LOCATION = {"channels": 3, "kernel_size": 5}


def config(attention: dict, decoder="bahdanau", cell="gru", layers=1, query="top_layer",
           **decoder_options):
    dec = {"type": decoder, "embedding_size": 7, "cell": cell, "hidden_size": 12,
           "num_layers": layers, "attention_query": query, **decoder_options}
    if decoder == "luong":
        dec["input_feeding"] = True
    return {"format": "rnnsearch-model", "format_version": 1,
            "encoder": {"embedding_size": 8, "cell": cell, "hidden_size": 6,
                        "bidirectional": True},
            "bridge": {"type": "dense", "from": "top_layer"},
            "attention": {"score": "additive", "size": 9, **attention},
            "decoder": dec}


MATRIX = {
    # ESPnet's AttLoc in its RNN decoder: scaling 2, two layers, query = layer 0's state
    "location-espnet": (config({"type": "location", "scaling": 2.0, "location": LOCATION},
                               cell="lstm", layers=2, query="first_layer"), None),
    "location-cumulative": (config({"type": "location", "location": {
        **LOCATION, "input": "cumulative"}}), None),
    "location-tacotron": (config({"type": "location", "location": {
        "channels": 4, "kernel_size": 7, "input": "previous_and_cumulative",
        "initial": "zeros"}}, decoder="luong"), None),
    "location-history": (config({"type": "location", "scaling": 2.0, "location": {
        **LOCATION, "input": "history", "history": 3}}, cell="lstm"), None),
    "location-recurrent": (config({"type": "location", "location": {
        **LOCATION, "recurrent": True}}), None),
    "location-first": (config({"type": "location", "location": {
        "channels": 2, "kernel_size": 3, "initial": "first"}}, decoder="luong"), None),
    "coverage-sum": (config({"type": "coverage", "scaling": 2.0,
                             "coverage": {"initial": "uniform"}}, query="first_layer",
                            layers=2), None),
    "coverage-tanh": (config({"type": "coverage", "coverage": {"update": "tanh", "size": 3}},
                             decoder="luong"), None),
    "coverage-softrelu": (config({"type": "coverage", "coverage": {
        "update": "softrelu", "size": 2}}), None),
    "coverage-gru": (config({"type": "coverage", "coverage": {"update": "gru", "size": 2}},
                            cell="lstm"), None),
    "forward": (config({"type": "forward", "location": LOCATION}, cell="lstm"), None),
    "forward-agent": (config({"type": "forward", "location": LOCATION,
                              "forward": {"transition_agent": True}}, decoder="luong",
                             query="first_layer", layers=2), None),
    "forward-constrained": (config({"type": "forward", "location": LOCATION}), (1, 3)),
    "multi-head-dot": (config({"type": "multi_head", "score": "tanh_dot", "scaling": 1 / 3,
                               "multi_head": {"heads": 2, "value_size": 4}}), None),
    "multi-head-add": (config({"type": "multi_head", "multi_head": {"heads": 3, "value_size": 5}},
                              decoder="luong", cell="lstm"), None),
    "multi-head-loc": (config({"type": "multi_head", "scaling": 2.0, "location": LOCATION,
                               "multi_head": {"heads": 2, "value_size": 4,
                                              "kernel_sizes": [3, 5]}},
                              query="first_layer", layers=2), None),
    "espnet-dot": (config({"type": "multi_head", "score": "tanh_dot", "scaling": 2.0,
                           "multi_head": {"heads": 1}}), None),
    "multi-head-constrained": (config({"type": "multi_head", "location": LOCATION,
                                       "multi_head": {"heads": 2, "value_size": 3}}), (1, 2)),
    # SpeechBrain: projected context fed back to layer 0, proj([c; s]) without activation
    "location-speechbrain": (config({"type": "location", "context_size": 5,
                                     "location": LOCATION}, decoder="luong", cell="lstm",
                                    layers=2, feed="context",
                                    attentional_activation="identity"), None),
    "coverage-projected-bahdanau": (config({"type": "coverage", "context_size": 6},
                                           readout="maxout", readout_size=8), (1, 4)),
    "global-constrained": (config({"type": "global"}), (1, 3)),
    "location-constrained": (config({"type": "location", "scaling": 2.0,
                                     "location": LOCATION}, query="first_layer"), (2, 4)),
    "coverage-constrained": (config({"type": "coverage"}, decoder="luong"), (0, 2)),
}


def sources(count=8, seed=0):
    rng = np.random.default_rng(seed)
    return [list(rng.integers(0, V_SOURCE, n)) for n in np.linspace(1, 100, count).astype(int)]


@pytest.fixture(scope="module", params=sorted(MATRIX))
def pair(request, tmp_path_factory):
    cfg, constraint = MATRIX[request.param]
    model = random_model(cfg, V_SOURCE, V_TARGET, seed=len(request.param))
    path = str(tmp_path_factory.mktemp(request.param))
    export_model_dir(model, path, *vocabularies(V_SOURCE, V_TARGET))
    return model, rnnsearch.Translator(path), constraint


@pytest.mark.parametrize("beam_size,num_hypotheses", [(1, 1), (5, 3)])
def test_engine_matches_reference(pair, beam_size, num_hypotheses):
    model, translator, constraint = pair
    batch = sources()
    got = translator._engine.translate(batch, beam_size=beam_size,
                                       num_hypotheses=num_hypotheses, max_length=20,
                                       return_attention=True, attention_constraint=constraint)
    for source, hyps in zip(batch, got):
        expected = reference_translate(model, source, 2, 3, beam_size=beam_size,
                                       num_hypotheses=num_hypotheses, max_decoding_length=20,
                                       attention_constraint=constraint)
        assert [h[0] for h in hyps] == [h.tokens for h in expected], f"length {len(source)}"
        for (_, score, attention), ref in zip(hyps, expected):
            assert score == pytest.approx(ref.score, rel=1e-4, abs=1e-4)
            np.testing.assert_allclose(attention, ref.attention, atol=1e-5)


def test_batch_is_one_by_one_bit_for_bit(pair):
    _, translator, constraint = pair
    batch = sources(8, seed=1)
    options = dict(beam_size=5, num_hypotheses=2, max_length=20, return_attention=True,
                   attention_constraint=constraint, coverage_penalty=0.2)
    together = translator._engine.translate(batch, **options)
    for source, hyps in zip(batch, together):
        alone = translator._engine.translate([source], **options)[0]
        assert [h[0] for h in hyps] == [h[0] for h in alone]
        assert [h[1] for h in hyps] == [h[1] for h in alone]
        for (_, _, a), (_, _, b) in zip(hyps, alone):
            assert np.array_equal(a, b)


def test_constraint_keeps_attention_in_its_window(pair):
    """Outside the window the weights are 0 — forward attention's clamp leaves its floor
    there (1e-6 before the normalisation, as ESPnet's AttForward does)."""
    _, translator, _ = pair
    forward = translator.config["attention"]["type"] == "forward"
    batch = sources(6, seed=2)
    got = translator._engine.translate(batch, beam_size=3, max_length=20,
                                       return_attention=True, attention_constraint=(1, 2))
    for hyps in got:
        attention = hyps[0][2]
        last = 0
        for row in attention:
            allowed = np.zeros(row.shape, bool)
            allowed[max(0, last - 1):last + 2] = True
            floor = row.min() if forward and row.min() < 1e-4 else 0.0
            assert np.all(row[~allowed] == floor) and allowed[row.argmax()]
            last = int(row.argmax())


def test_threads_give_the_serial_results(pair):
    _, translator, constraint = pair
    batch = sources(6, seed=3)
    options = dict(beam_size=4, max_length=15, return_attention=True,
                   attention_constraint=constraint)
    serial = translator._engine.translate(batch, **options)
    threaded = translator._engine.translate(batch, threads=2, **options)
    assert [[(h[0], h[1]) for h in s] for s in serial] == \
        [[(h[0], h[1]) for h in s] for s in threaded]


# ---------------------------------------------------------------- bad input

def _normalized(attention: dict, **decoder):
    return normalize_config(config(attention, **decoder))


@pytest.mark.parametrize("attention,field", [
    ({"type": "lokation"}, "attention.type"),
    ({"type": "location"}, "attention.location"),
    ({"type": "location", "location": {"channels": 3}}, "attention.location.kernel_size"),
    ({"type": "location", "location": {**LOCATION, "kernel_size": 4}},
     "attention.location.kernel_size"),
    ({"type": "location", "location": {**LOCATION, "channels": 0}},
     "attention.location.channels"),
    ({"type": "location", "location": {**LOCATION, "input": "history"}},
     "attention.location.history"),
    ({"type": "location", "location": {**LOCATION, "history": 2}},
     "attention.location.history"),
    ({"type": "location", "location": {**LOCATION, "input": "past"}},
     "attention.location.input"),
    ({"type": "location", "location": {**LOCATION, "initial": "random"}},
     "attention.location.initial"),
    ({"type": "location", "location": {**LOCATION, "window": 3}}, "attention.location"),
    ({"type": "location", "location": LOCATION, "scaling": 0}, "attention.scaling"),
    ({"type": "location", "location": LOCATION, "scaling": float("inf")},
     "attention.scaling"),
    ({"type": "location", "location": LOCATION, "scaling": "2"}, "attention.scaling"),
    ({"type": "location", "location": LOCATION, "coverage": {}}, "attention.coverage"),
    ({"type": "global", "location": LOCATION}, "attention.location"),
    ({"type": "location", "location": LOCATION, "score": "general"}, "attention type"),
    ({"type": "coverage", "coverage": {"update": "sum", "size": 2}},
     "attention.coverage.size"),
    ({"type": "coverage", "coverage": {"update": "lstm"}}, "attention.coverage.update"),
    ({"type": "coverage", "coverage": {"update": "gru", "initial": "uniform"}},
     "attention.coverage.initial"),
    ({"type": "forward"}, "attention.location"),
    ({"type": "forward", "location": {**LOCATION, "input": "cumulative"}},
     "attention.location.input"),
    ({"type": "forward", "location": LOCATION, "forward": {"agent": True}},
     "attention.forward"),
    ({"type": "forward", "location": LOCATION, "forward": {"transition_agent": 1}},
     "attention.forward.transition_agent"),
    ({"type": "location", "location": LOCATION, "forward": {}}, "attention.forward"),
    ({"type": "multi_head"}, "attention.multi_head"),
    ({"type": "multi_head", "multi_head": {"heads": 2}}, "attention.multi_head.value_size"),
    ({"type": "multi_head", "multi_head": {"heads": 17, "value_size": 2}},
     "attention.multi_head.heads"),
    ({"type": "multi_head", "multi_head": {"heads": 2, "value_size": 2,
                                           "kernel_sizes": [3, 3]}},
     "attention.multi_head.kernel_sizes"),
    ({"type": "multi_head", "location": LOCATION,
      "multi_head": {"heads": 2, "value_size": 2, "kernel_sizes": [3, 4]}},
     "attention.multi_head.kernel_sizes"),
    ({"type": "multi_head", "location": LOCATION,
      "multi_head": {"heads": 2, "value_size": 2, "kernel_sizes": [3, (1 << 17) + 1]}},
     "attention.multi_head.kernel_sizes"),
    ({"type": "location", "location": {"channels": 1 << 17, "kernel_size": 5}},
     "attention.location.channels"),
    ({"type": "global", "context_size": 1 << 17}, "attention.context_size"),
    ({"type": "multi_head", "score": "general", "multi_head": {"heads": 1}},
     "attention type 'multi_head'"),
    ({"type": "global", "score": "tanh_dot"}, "attention.score 'tanh_dot'"),
    # options the types that carry state do not take (their steps read the whole memory
    # and project their own queries)
    ({"type": "location", "location": LOCATION, "gate": True}, "attention.gate"),
    ({"type": "coverage", "key_value": {"split": 4}}, "attention.key_value"),
    ({"type": "forward", "location": LOCATION, "layer_norm": True}, "attention.layer_norm"),
    ({"type": "location", "location": LOCATION, "score_activation": "relu"},
     "attention.score_activation"),
    ({"type": "monotonic", "scaling": 2.0}, "attention.scaling"),
])
def test_bad_attention_config_names_the_field(attention, field):
    with pytest.raises(ModelError, match=field.replace(".", r"\.")):
        _normalized(attention)


def test_bad_feed_and_context_size_name_the_field():
    with pytest.raises(ModelError, match=r"decoder\.feed"):
        _normalized({"type": "global"}, feed="context")  # bahdanau
    with pytest.raises(ModelError, match=r"decoder\.feed"):
        _normalized({"type": "global"}, decoder="luong", feed="state")
    with pytest.raises(ModelError, match=r"attention\.context_size"):
        _normalized({"type": "global", "context_size": 0})


def test_bad_attention_query_names_the_field():
    with pytest.raises(ModelError, match=r"decoder\.attention_query"):
        _normalized({"type": "global"}, query="bottom")


def test_missing_and_misshaped_tensors(tmp_path):
    from rnnsearch.random_model import write_random_model
    from rnnsearch.safetensors_io import read_safetensors, write_safetensors
    cfg = config({"type": "location", "location": LOCATION})
    path = str(tmp_path)
    write_random_model(path, cfg, V_SOURCE, V_TARGET)
    tensors, _ = read_safetensors(path + "/model.safetensors")
    tensors = {k: np.array(v) for k, v in tensors.items()}
    conv = tensors.pop("attention.location.conv")
    write_safetensors(path + "/model.safetensors", tensors)
    with pytest.raises(ModelError, match="attention.location.conv"):
        rnnsearch.Translator(path)
    tensors["attention.location.conv"] = conv[:, :, :3].copy()
    write_safetensors(path + "/model.safetensors", tensors)
    with pytest.raises(ModelError, match="attention.location.conv"):
        rnnsearch.Translator(path)


def test_bad_constraint_is_a_value_error(small_model_dir, tmp_path):
    translator = rnnsearch.Translator(small_model_dir)
    for bad in [(1,), (1, 0), (-1, 3), ("1", 3), (1.5, 3), "13", 5, (True, 3)]:
        with pytest.raises(ValueError, match="attention_constraint"):
            translator.translate_batch([["s1", "s2"]], attention_constraint=bad)
    none = copy.deepcopy(SMALL_NONE)
    from rnnsearch.random_model import write_random_model
    write_random_model(str(tmp_path / "none"), none, V_SOURCE, V_TARGET)
    plain = rnnsearch.Translator(str(tmp_path / "none"))
    with pytest.raises(ValueError, match="attention"):
        plain.translate_batch([["s1"]], attention_constraint=(1, 3))
    # the engine refuses it too, whatever the caller
    with pytest.raises(ValueError, match="attention constraint"):
        plain._engine.translate([[4, 5]], attention_constraint=(1, 3))
    with pytest.raises(ValueError, match="attention constraint"):
        translator._engine.translate([[4, 5]], attention_constraint=(0, 0))
    with pytest.raises(ValueError, match="attention_constraint"):
        translator.translate_batch([["s1"]], attention_constraint=(1, 3), search="opennmt")


def test_constraint_window_wider_than_any_source(small_model_dir):
    # the window's ends are computed without int overflow, whatever the engine is given
    engine = rnnsearch.Translator(small_model_dir)._engine
    widest = engine.translate([[4, 5, 6]], attention_constraint=(2**31 - 1, 2**31 - 1))
    wide = engine.translate([[4, 5, 6]], attention_constraint=(100, 100))
    assert repr(widest) == repr(wide)


SMALL_NONE = {
    "format": "rnnsearch-model", "format_version": 1,
    "encoder": {"embedding_size": 8, "cell": "gru", "hidden_size": 6},
    "bridge": {"type": "last"}, "attention": None,
    "decoder": {"type": "none", "embedding_size": 8, "cell": "gru", "hidden_size": 6},
}


def test_cli_attention_constraint(small_model_dir, capsys):
    from rnnsearch.cli import main
    import io
    import sys
    old = sys.stdin
    sys.stdin = io.StringIO("s1 s2 s3 s4\n")
    try:
        assert main(["translate", "-m", small_model_dir, "-q", "--with-alignment",
                     "--attention-constraint", "0", "1"]) == 0
    finally:
        sys.stdin = old
    line = capsys.readouterr().out.strip()
    pairs = [tuple(map(int, p.split("-"))) for p in line.split(" ||| ")[1].split()]
    # window [last, last + 1): every step attends where the previous one did, position 0
    assert all(s == 0 for s, _ in pairs)


def test_memory_estimate_counts_the_attention_state(tmp_path, monkeypatch):
    """The state a stateful type keeps per row (here ESPnet's location2d: the last 3
    weight vectors) is in the memory estimate, through the engine's own count: a request
    that only the old per-row estimate would let through is a ValueError before the
    engine allocates anything."""
    from rnnsearch import limits
    cfg, _ = MATRIX["location-history"]
    model = random_model(cfg, V_SOURCE, V_TARGET, seed=3)
    path = str(tmp_path / "location-history")
    export_model_dir(model, path, *vocabularies(V_SOURCE, V_TARGET))
    tr = rnnsearch.Translator(path)
    batch, beam, length = 4, 8, 500
    rows = batch * beam
    state_floats = tr._engine.decoder_block_floats(rows, length)
    assert state_floats >= rows * 2 * 3 * length        # two copies of 3 weight vectors
    args = (tr.config, len(tr.target_vocab), batch, beam, length, 10, False)
    without = limits.decoding_bytes(*args)
    with_state = limits.decoding_bytes(*args, tr._engine.decoder_block_floats)
    assert with_state > 2 * without          # the state dominates this model's block
    monkeypatch.setattr(limits, "physical_memory", lambda: (without + with_state) // 2)
    source = [["s1"] * length] * batch
    with pytest.raises(ValueError, match="beam_size"):
        tr.translate_batch(source, beam_size=beam, max_decoding_length=10)
    monkeypatch.setattr(limits, "physical_memory", lambda: with_state + 1)
    assert len(tr.translate_batch(source, beam_size=beam, max_decoding_length=10)) == batch
    assert tr._engine.decoder_block_floats(2**31 - 1, 2**31 - 1) is None or \
        tr._engine.decoder_block_floats(2**31 - 1, 2**31 - 1) > 2**40
