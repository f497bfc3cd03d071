"""Local, hard monotonic, MoChA, hard (argmax), gated and key-value attention and the
self-attentive pooling bridge: the engine against the PyTorch reference written from the
papers' equations (rnnsearch.reference.attention / pooling) — greedy and beam 5 tokens
identical, scores within 1e-4, attention within 1e-5, on sources of 1..100 tokens — and
a batch against its sentences one by one, bit for bit."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnsearch  # noqa: E402
from rnnsearch.random_model import vocabularies  # noqa: E402
from rnnsearch.reference import export_model_dir, random_model  # noqa: E402
from rnnsearch.reference import translate as reference_translate  # noqa: E402

V_SOURCE, V_TARGET = 30, 25
E, H = 8, 12
MAX_LENGTH = 20


def _config(attention, decoder="luong", cell="gru", input_feeding=False, bridge="zeros",
            pooling=None):
    memory = 2 * H  # bidirectional concat; the decoder is as wide, so dot scores work
    decoder_section = {"type": decoder, "embedding_size": E + 1, "cell": cell,
                       "hidden_size": memory}
    if decoder == "luong":
        decoder_section["input_feeding"] = input_feeding
    else:
        decoder_section.update(readout="tanh", readout_size=14)
    encoder = {"embedding_size": E, "cell": cell, "hidden_size": H, "bidirectional": True}
    if pooling:
        encoder["pooling"] = pooling
    return {"format": "rnnsearch-model", "format_version": 1, "encoder": encoder,
            "bridge": {"type": bridge}, "attention": attention, "decoder": decoder_section}


def _local(mode, window, **options):
    return {"mode": mode, "window": window, **options,
            **({"position_size": 6} if mode == "predictive" else {})}


ADDITIVE = {"score": "additive", "size": 10}
MATRIX = {
    # Luong et al. 2015 local-p (Gaussian) and local-m, every score, both edge treatments
    "local-p-general-feed": dict(attention={"type": "local", "score": "general",
                                            "local": _local("predictive", 4)},
                                 input_feeding=True),
    "local-p-additive-round-zero-pad-bahdanau": dict(
        attention={"type": "local", **ADDITIVE,
                   "local": _local("predictive", 3, center="round", edges="zero_pad")},
        decoder="bahdanau", cell="lstm"),
    "local-m-dot": dict(attention={"type": "local", "score": "dot",
                                   "local": _local("monotonic", 2)}),
    "local-m-scaled-gaussian-zero-pad": dict(
        attention={"type": "local", "score": "scaled_dot",
                   "local": _local("monotonic", 3, gaussian=True, edges="zero_pad")}),
    "local-p-hard-gate": dict(attention={"type": "local", "score": "general", "hard": True,
                                         "gate": True, "local": _local("predictive", 5)},
                              decoder="bahdanau"),
    # Xu et al. 2015: hard attention at inference, the beta gate
    "global-hard-additive": dict(attention={"score": "additive", "size": 10, "hard": True},
                                 decoder="bahdanau", cell="lstm"),
    "global-gate-dot-feed": dict(attention={"score": "dot", "gate": True},
                                 input_feeding=True),
    # Daniluk et al. 2017 key/value split; separate key and value projections
    "key-value-split-general": dict(attention={"score": "general",
                                               "key_value": {"split": 10}}),
    "key-value-split-projected-additive": dict(
        attention={**ADDITIVE, "key_value": {"split": 14, "value_size": 7}},
        decoder="bahdanau"),
    "key-value-projection-general-feed": dict(
        attention={"score": "general", "key_value": {"value_size": 9}}, input_feeding=True),
    # Raffel et al. 2017 hard monotonic (energy gain and bias), Chiu & Raffel 2018 MoChA
    "monotonic-additive-bahdanau": dict(attention={"type": "monotonic", **ADDITIVE},
                                        decoder="bahdanau"),
    "monotonic-general-luong": dict(attention={"type": "monotonic", "score": "general"},
                                    cell="lstm"),
    "mocha-additive-chunk3": dict(attention={"type": "mocha", **ADDITIVE,
                                             "mocha": {"chunk_size": 3, "size": 8}},
                                  input_feeding=True),
    "mocha-dot-chunk1-bahdanau": dict(attention={"type": "mocha", "score": "dot",
                                                 "mocha": {"chunk_size": 1, "size": 5}},
                                      decoder="bahdanau"),
    # the conditional GRU (Nematus, Marian) queries every type with its intermediate
    # state; Marian's layer-normalised keys and query (the zero-pad key too), and a context
    # narrower than the memory as GRU 2's input
    "local-p-zero-pad-layer-norm-conditional": dict(
        attention={"type": "local", **ADDITIVE, "layer_norm": True,
                   "local": _local("predictive", 3, edges="zero_pad")},
        decoder="conditional"),
    "mocha-key-value-conditional": dict(
        attention={"type": "mocha", **ADDITIVE, "key_value": {"split": 14, "value_size": 7},
                   "mocha": {"chunk_size": 2, "size": 6}},
        decoder="conditional"),
    # Yang et al. 2016 / Lin et al. 2017 pooling, read by the bridge
    "pooling-bridge-han": dict(attention={"score": "general"}, bridge="pooling",
                               pooling={"size": 7}, cell="lstm"),
    "pooling-bridge-3-rows-local": dict(attention={"type": "local", "score": "dot",
                                                   "local": _local("monotonic", 4)},
                                        bridge="pooling", pooling={"rows": 3, "size": 5},
                                        decoder="bahdanau"),
}


def _sources(count=8, seed=0):
    rng = np.random.default_rng(seed)
    lengths = [1, 2, 3, 100] + list(np.linspace(4, 99, count - 4).astype(int))
    return [list(rng.integers(0, V_SOURCE, n)) for n in lengths]


# r, the energies' bias: where a random model attends at most steps but not all
ENERGY_BIAS = {"monotonic-additive-bahdanau": 0.5, "monotonic-general-luong": 0.0,
               "mocha-additive-chunk3": 0.0, "mocha-dot-chunk1-bahdanau": 0.0,
               "mocha-key-value-conditional": 0.0}


def _model(name):
    model = random_model(_config(**MATRIX[name]), V_SOURCE, V_TARGET, seed=len(name))
    if name in ENERGY_BIAS:
        with torch.no_grad():
            model.attention.energy_bias.fill_(ENERGY_BIAS[name])
    return model


@pytest.fixture(scope="module", params=sorted(MATRIX))
def pair(request, tmp_path_factory):
    model = _model(request.param)
    path = str(tmp_path_factory.mktemp(request.param))
    export_model_dir(model, path, *vocabularies(V_SOURCE, V_TARGET))
    return request.param, model, rnnsearch.Translator(path)


def _compare(name, model, translator, beam_size, constraint=None):
    """The engine's hypotheses (checked against the reference's) for _sources(), and every
    attention row they hold."""
    sources = _sources()
    engine = translator._engine.translate(sources, beam_size=beam_size,
                                          num_hypotheses=beam_size, max_length=MAX_LENGTH,
                                          return_attention=True,
                                          attention_constraint=constraint)
    rows = []
    for source, got in zip(sources, engine):
        expected = reference_translate(model, source, 2, 3, beam_size=beam_size,
                                       num_hypotheses=beam_size,
                                       max_decoding_length=MAX_LENGTH,
                                       attention_constraint=constraint)
        assert [h[0] for h in got] == [h.tokens for h in expected], f"{name}: {source}"
        for (_, score, attention), ref in zip(got, expected):
            assert score == pytest.approx(ref.score, rel=1e-4, abs=1e-4)
            np.testing.assert_allclose(attention, ref.attention, atol=1e-5)
            rows.extend(attention)
    return engine, rows


@pytest.mark.parametrize("beam_size", [1, 5])
def test_matches_reference(pair, beam_size):
    name, model, translator = pair
    _, rows = _compare(name, model, translator, beam_size)
    if beam_size == 5 and name.startswith(("monotonic", "mocha", "local-m")):
        # both sides of the edge are exercised: steps that attend, and steps where no
        # position is chosen (monotonic) or the window has left the sentence (local-m)
        assert any(r.sum() == 0 for r in rows) and any(r.sum() > 0 for r in rows), name


def test_batch_is_one_by_one_bit_for_bit(pair):
    _, _, translator = pair
    sources = _sources()
    batch = translator._engine.translate(sources, beam_size=5, num_hypotheses=2,
                                         max_length=MAX_LENGTH, return_attention=True)
    for source, together in zip(sources, batch):
        alone = translator._engine.translate([source], beam_size=5, num_hypotheses=2,
                                             max_length=MAX_LENGTH, return_attention=True)[0]
        for (t1, s1, a1), (t2, s2, a2) in zip(together, alone):
            assert t1 == t2 and s1 == s2 and np.array_equal(a1, a2)


# ---------------------------------------------------------------------------------------
# The decode-time attention constraint (a window [last - backward, last + forward) around
# the previous step's most attended position) and attention.scaling on these types:
# local scores only the positions in both windows, monotonic and MoChA choose only inside
# it (MoChA's chunk cut to it), and scaling multiplies local's scores (pads included) and
# MoChA's chunk energies.
CONSTRAINED = {
    "local-p-general-scaled": (dict(attention={"type": "local", "score": "general",
                                               "scaling": 2.0,
                                               "local": _local("predictive", 4)},
                                    input_feeding=True), (1, 3)),
    "local-p-additive-zero-pad-hard": (dict(
        attention={"type": "local", **ADDITIVE, "hard": True,
                   "local": _local("predictive", 3, center="round", edges="zero_pad")},
        decoder="bahdanau", cell="lstm"), (2, 2)),
    "local-m-scaled-dot-zero-pad": (dict(
        attention={"type": "local", "score": "scaled_dot", "scaling": 0.5,
                   "local": _local("monotonic", 3, gaussian=True, edges="zero_pad")}), (0, 2)),
    "global-hard-scaled": (dict(attention={"score": "general", "hard": True, "scaling": 3.0}),
                           (1, 2)),
    "monotonic-additive": (dict(attention={"type": "monotonic", **ADDITIVE},
                                decoder="bahdanau"), (0, 3)),
    "mocha-additive-scaled": (dict(attention={"type": "mocha", **ADDITIVE, "scaling": 2.0,
                                              "mocha": {"chunk_size": 3, "size": 8}},
                                   input_feeding=True), (0, 2)),
}


@pytest.fixture(scope="module", params=sorted(CONSTRAINED))
def constrained(request, tmp_path_factory):
    options, constraint = CONSTRAINED[request.param]
    model = random_model(_config(**options), V_SOURCE, V_TARGET, seed=len(request.param))
    kind = options["attention"].get("type")
    if kind in ("monotonic", "mocha"):
        with torch.no_grad():  # moves on, and attends at most steps but not all
            model.attention.energy_bias.fill_(0.5 if kind == "monotonic" else 0.0)
    path = str(tmp_path_factory.mktemp(request.param))
    export_model_dir(model, path, *vocabularies(V_SOURCE, V_TARGET))
    return request.param, model, rnnsearch.Translator(path), constraint


def _in_window(attention, backward, forward):
    """Every row's weights inside the window around the previous row's first maximum
    (kept from earlier when a row has no weight at all)."""
    last = 0
    for row in attention:
        allowed = np.zeros(row.shape, bool)
        allowed[max(0, last - backward):last + forward] = True
        if not np.all(row[~allowed] == 0.0):
            return False
        if row.sum() > 0:
            last = int(row.argmax())
    return True


@pytest.mark.parametrize("beam_size", [1, 5])
def test_constrained_types_match_reference(constrained, beam_size):
    name, model, translator, constraint = constrained
    engine, _ = _compare(name, model, translator, beam_size, constraint)
    free = translator._engine.translate(_sources(), beam_size=beam_size,
                                        num_hypotheses=beam_size, max_length=MAX_LENGTH,
                                        return_attention=True)
    changed = False
    for got, unconstrained in zip(engine, free):
        assert all(_in_window(attention, *constraint) for _, _, attention in got), name
        changed |= any(a.shape != b.shape or not np.array_equal(a, b)
                       for (_, _, a), (_, _, b) in zip(got, unconstrained))
    assert changed, f"{name}: the constraint changed nothing"


def test_constrained_batch_is_one_by_one_bit_for_bit(constrained):
    _, _, translator, constraint = constrained
    sources = _sources(seed=1)
    options = dict(beam_size=5, num_hypotheses=2, max_length=MAX_LENGTH, return_attention=True,
                   attention_constraint=constraint)
    batch = translator._engine.translate(sources, **options)
    for source, together in zip(sources, batch):
        alone = translator._engine.translate([source], **options)[0]
        for (t1, s1, a1), (t2, s2, a2) in zip(together, alone):
            assert t1 == t2 and s1 == s2 and np.array_equal(a1, a2)


def test_monotonic_refuses_scaling(tmp_path):
    config = _config({"type": "monotonic", **ADDITIVE, "scaling": 2.0})
    with pytest.raises(rnnsearch.ModelError, match="attention.scaling"):
        random_model(config, V_SOURCE, V_TARGET)


def test_window_wider_than_the_sentence_changes_nothing(constrained):
    """A constraint window that holds every position (and so, for local, all of its own
    window) gives the unconstrained output bit for bit."""
    _, _, translator, _ = constrained
    options = dict(beam_size=3, num_hypotheses=3, max_length=MAX_LENGTH, return_attention=True)
    wide = translator._engine.translate(_sources(), attention_constraint=(200, 200), **options)
    free = translator._engine.translate(_sources(), **options)
    for got, want in zip(wide, free):
        for (t1, s1, a1), (t2, s2, a2) in zip(got, want):
            assert t1 == t2 and s1 == s2 and np.array_equal(a1, a2)
