"""Sources that are not token ids (source.kind 'features' and 'one_hot'): the engine
against the PyTorch reference (rnnsearch.reference) over encoders of feature frames — none
(the frames, projected, are the memory), (bi)RNN stacks, the pyramid of Listen, Attend and
Spell, ESPnet's strides and per-layer projections — and Show, Attend and Tell's decoder
options (the mean-annotation bridge, relu scores, the gate per dimension or scalar, the
deep output): greedy and beam 5, tokens identical, scores within 1e-4, attention within
1e-5. Then Translator.translate_features' API: batches, threads, one-hot arrays, and bad
input."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnsearch  # noqa: E402
from rnnsearch.random_model import vocabularies  # noqa: E402
from rnnsearch.reference import export_model_dir, random_model  # noqa: E402
from rnnsearch.reference import translate as reference_translate  # noqa: E402

V_SOURCE, V_TARGET = 12, 20
F = 7
BOS, EOS = 2, 3


def _config(encoder, bridge=None, attention=None, decoder=None, kind="features"):
    source = {"kind": kind, "feature_size": F if kind == "features" else V_SOURCE - 1}
    if kind == "features":
        source["vocabulary"] = None
    dec = {"type": "bahdanau", "embedding_size": 6, "cell": "lstm", "hidden_size": 10}
    dec.update(decoder or {})
    att = {"score": "additive", "size": 9}
    att.update(attention or {})
    return {"format": "rnnsearch-model", "format_version": 1, "source": source,
            "encoder": encoder, "bridge": bridge or {"type": "zeros"}, "attention": att,
            "decoder": dec}


SAT_BRIDGE = {"type": "mean", "activation": "identity", "lstm_cell": "bridged"}
MATRIX = {
    # the captioning tutorial's decoder straight over projected regions
    "regions-projected-sat": _config(
        {"num_layers": 0, "input_projection": {"size": 8, "activation": "relu"}},
        SAT_BRIDGE, {"score_activation": "relu", "gate": True, "gate_per_dimension": True},
        {"readout_inputs": ["state"]}),
    # Xu et al.'s own choices over the raw regions: scalar gate, deep output
    "regions-sat-xu": _config(
        {"num_layers": 0}, SAT_BRIDGE, {"gate": True},
        {"readout": "tanh", "readout_size": 6}),
    # Listen, Attend and Spell: a BLSTM, then two pyramid layers
    "las-pyramid": _config(
        {"cell": "lstm", "hidden_size": 6, "num_layers": 3, "bidirectional": True,
         "subsample": [1, 2, 2, 1], "subsample_mode": "concat"},
        decoder={"readout_inputs": ["state", "context"]}),
    # ESPnet's blstmp: strides after layers, a projection after every layer
    "espnet-blstmp": _config(
        {"cell": "lstm", "hidden_size": 6, "num_layers": 3, "bidirectional": True,
         "subsample": [1, 2, 3, 1], "subsample_mode": "stride",
         "projection": {"size": 8}},
        {"type": "dense", "from": "top_layer"}, decoder={"cell": "gru"}),
    # a stride at the input, a unidirectional GRU stack, Luong attention
    "input-stride-gru-luong": _config(
        {"cell": "gru", "hidden_size": 10, "num_layers": 2, "subsample": [3, 1, 1],
         "subsample_mode": "stride", "input_projection": {"size": 5}},
        {"type": "last", "from": "top_layer"}, {"score": "general"}, {"type": "luong", "cell": "gru",
                                                 "input_feeding": True}),
    # concatenation at the input (frame stacking) into a summed biGRU
    "input-stacking-sum": _config(
        {"cell": "gru", "hidden_size": 10, "num_layers": 1, "bidirectional": True,
         "merge": "sum", "subsample": [2, 1]},
        {"type": "mean"}, {"score": "dot"}, {"type": "luong", "cell": "gru"}),
}


def _frames(count=5, seed=0, lengths=None):
    rng = np.random.default_rng(seed)
    lengths = lengths or np.linspace(6, 40, count).astype(int)
    return [rng.standard_normal((int(n), F)).astype(np.float32) for n in lengths]


def _export(config, path, seed):
    model = random_model(config, V_SOURCE, V_TARGET, seed=seed)
    source_vocab, target_vocab = vocabularies(V_SOURCE, V_TARGET)
    export_model_dir(model, path,
                     None if config["source"]["kind"] == "features" else source_vocab,
                     target_vocab)
    return model, rnnsearch.Translator(path)


@pytest.fixture(scope="module", params=sorted(MATRIX))
def pair(request, tmp_path_factory):
    return _export(MATRIX[request.param], str(tmp_path_factory.mktemp(request.param)),
                   seed=len(request.param))


def _check(model, results, sources, beam_size):
    for frames, result in zip(sources, results):
        expected = reference_translate(model, frames, BOS, EOS, beam_size=beam_size,
                                       num_hypotheses=beam_size, max_decoding_length=20)
        vocab = vocabularies(V_SOURCE, V_TARGET)[1]
        assert result.hypotheses == [[vocab[i] for i in h.tokens] for h in expected]
        for score, attention, ref in zip(result.scores, result.attention, expected):
            assert score == pytest.approx(ref.score, rel=1e-4, abs=1e-4)
            assert attention.shape == ref.attention.shape
            np.testing.assert_allclose(attention, ref.attention, atol=1e-5)


@pytest.mark.parametrize("beam_size", [1, 5])
def test_engine_matches_reference(pair, beam_size):
    model, translator = pair
    sources = _frames()
    results = translator.translate_features(sources, beam_size=beam_size,
                                            num_hypotheses=beam_size, max_decoding_length=20,
                                            return_scores=True, return_attention=True)
    _check(model, results, sources, beam_size)


def test_subsampled_attention_has_one_column_per_memory_position(pair):
    model, translator = pair
    enc = translator.config["encoder"]
    from rnnsearch.source_options import memory_length
    for frames in _frames(4, seed=3):
        result = translator.translate_features([frames], beam_size=2, return_attention=True)[0]
        assert result.attention[0].shape[1] == memory_length(enc, len(frames))


def test_two_threads_at_batch_one_equal_one_thread(tmp_path):
    """Fewer sentences than threads: a bidirectional layer runs its two directions side by
    side (rs_encoder.c), here behind a stride at the input, so the second direction's
    buffers must hold the first layer's positions, not the frames' (long sources: a
    shortfall would overwrite the state it allocates next)."""
    config = _config({"cell": "lstm", "hidden_size": 12, "num_layers": 2,
                      "bidirectional": True, "subsample": [2, 1, 1],
                      "subsample_mode": "stride"},
                     {"type": "dense", "from": "top_layer"})
    _, one = _export(config, str(tmp_path / "m"), seed=5)
    two = rnnsearch.Translator(str(tmp_path / "m"), intra_threads=2)
    for frames in _frames(4, seed=2, lengths=[300, 41, 7, 120]):
        a, b = (t.translate_features([frames], beam_size=3, return_scores=True,
                                     return_attention=True)[0] for t in (one, two))
        assert a.hypotheses == b.hypotheses and a.scores == b.scores
        assert all(np.array_equal(x, y) for x, y in zip(a.attention, b.attention))


def test_batch_and_threads_equal_one_by_one(tmp_path):
    model, translator = _export(MATRIX["espnet-blstmp"], str(tmp_path / "m"), seed=4)
    sources = _frames(9, seed=1)
    alone = [translator.translate_features([s], beam_size=3, return_scores=True,
                                           return_attention=True)[0] for s in sources]
    threaded = rnnsearch.Translator(str(tmp_path / "m"), intra_threads=2)
    for t in (translator, threaded):
        batch = t.translate_features(sources, beam_size=3, return_scores=True,
                                     return_attention=True)
        for a, b in zip(alone, batch):
            assert a.hypotheses == b.hypotheses and a.scores == b.scores
            for x, y in zip(a.attention, b.attention):
                assert np.array_equal(x, y)
    # one array [N, T, F] of equal-length sources, float64 accepted
    same = np.stack([s[:6] for s in sources[:3]]).astype(np.float64)
    assert [r.hypotheses for r in translator.translate_features(same)] == \
        [r.hypotheses for r in translator.translate_features(list(same.astype(np.float32)))]


def test_one_hot_arrays_decode_as_their_tokens(tmp_path):
    config = _config({"embedding_size": 6, "cell": "gru", "hidden_size": 10,
                      "bidirectional": True}, kind="one_hot")
    model, translator = _export(config, str(tmp_path / "m"), seed=7)
    rng = np.random.default_rng(0)
    width = V_SOURCE - 1      # the vocabulary's last entry is the all-zero vector
    ids = [list(rng.integers(0, V_SOURCE, n)) for n in (1, 4, 9, 17)]
    arrays = [np.eye(width, dtype=np.float32)[[min(i, width - 1) for i in row]] for row in ids]
    for array, row in zip(arrays, ids):
        array[[k for k, i in enumerate(row) if i == width]] = 0.0
    tokens = [[translator.source_vocab.tokens[i] for i in row] for row in ids]
    for beam in (1, 5):
        from_arrays = translator.translate_features(arrays, beam_size=beam, return_scores=True,
                                                    return_attention=True)
        from_tokens = translator.translate_batch(tokens, beam_size=beam, return_scores=True,
                                                 return_attention=True)
        for a, b in zip(from_arrays, from_tokens):
            assert a.hypotheses == b.hypotheses and a.scores == b.scores
        for row, result in zip(ids, from_arrays):
            expected = reference_translate(model, row, BOS, EOS, beam_size=beam,
                                           num_hypotheses=beam, max_decoding_length=256)
            assert result.scores[0] == pytest.approx(expected[0].score, rel=1e-4, abs=1e-4)
            np.testing.assert_allclose(result.attention[0], expected[0].attention, atol=1e-5)


@pytest.fixture(scope="module")
def las(tmp_path_factory):
    return _export(MATRIX["las-pyramid"], str(tmp_path_factory.mktemp("las")), seed=2)[1]


@pytest.mark.parametrize("features, error, message", [
    ([np.zeros((8, F + 1), np.float32)], ValueError, r"features\[0\] has 8 values per row; "
                                                     r"this model expects 7"),
    ([np.zeros((8,), np.float32)], ValueError, r"features\[0\] has shape \[8\]; expected "
                                               r"\[T, 7\]"),
    ([np.zeros((2, 8, F), np.float32)], ValueError, r"features\[0\] has shape"),
    ([np.zeros((8, F), np.int64)], TypeError, r"features\[0\] has dtype int64"),
    ([np.zeros((8, F), np.float16)], TypeError, r"features\[0\] has dtype float16"),
    ([[[0.0] * F] * 8], TypeError, r"features\[0\] is a list; expected a NumPy array"),
    ([np.zeros((0, F), np.float32)], ValueError, r"features\[0\] is empty"),
    ([np.zeros((3, F), np.float32)], ValueError, r"features\[0\] has 3 frame\(s\); this "
                                                 r"model's encoder subsamples"),
    ([np.zeros((8, F), np.float32), np.full((8, F), np.nan, np.float32)], ValueError,
     r"features\[1\] has a NaN or infinite value in row 0"),
    ([np.full((8, F), 1e300)], ValueError, r"beyond float32's range"),
    (np.zeros((8, F), np.float32), TypeError, r"wrap one source in a list"),
    ("frames.npy", TypeError, r"features must be a list of arrays"),
])
def test_bad_feature_input(las, features, error, message):
    with pytest.raises(error, match=message):
        las.translate_features(features)


def test_token_input_to_a_features_model_and_the_reverse(las, small_translator):
    with pytest.raises(ValueError, match=r"reads feature arrays \[T, 7\].*translate_features"):
        las.translate_batch([["a", "b"]])
    with pytest.raises(ValueError, match=r"source.kind 'ids'.*translate_batch"):
        small_translator.translate_features([np.zeros((3, 4), np.float32)])


def test_too_long_features_are_refused_or_cut(las):
    limit = las.config["source"]["max_length"]
    long = np.zeros((limit + 5, F), np.float32)
    with pytest.raises(ValueError, match=r"source.max_length.*truncate=True"):
        las.translate_features([long])
    cut = las.translate_features([long], truncate=True, return_attention=True,
                                 max_decoding_length=3)[0]
    assert cut.attention[0].shape[1] == (limit // 2) // 2


def test_empty_call_returns_nothing(las):
    assert las.translate_features([]) == []


def test_cli_translates_feature_files_in_order(las, tmp_path, capsys):
    from rnnsearch.cli import main
    sources = _frames(5, seed=9)
    np.savez(tmp_path / "utterances.npz", *sources[:3])
    np.save(tmp_path / "more.npy", np.stack([s[:10] for s in sources[3:]]))
    expected = las.translate_features(sources[:3] + [s[:10] for s in sources[3:]],
                                      beam_size=2, num_hypotheses=2, return_scores=True)
    assert main(["translate", "-m", las.model_path, "--features",
                 str(tmp_path / "utterances.npz"), str(tmp_path / "more.npy"),
                 "--beam-size", "2", "--n-best", "2", "--with-scores",
                 "--batch-size", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{r.scores[i]:.6f}\t{' '.join(r.hypotheses[i])}"
                     for r in expected for i in range(2)]


def test_cli_feature_errors_name_the_file_and_array(las, tmp_path, capsys):
    from rnnsearch.cli import main

    def fails(*args, stdin=None):
        import io
        import sys
        saved = sys.stdin
        sys.stdin = io.StringIO(stdin or "")
        try:
            assert main(["translate", "-m", las.model_path, *args]) != 0
        finally:
            sys.stdin = saved
        return capsys.readouterr().err

    np.save(tmp_path / "wide.npy", np.zeros((2, 9, F + 2), np.float32))
    assert f"--features {tmp_path / 'wide.npy'}[0] has 9 values per row; this model " \
        "expects 7" in fails("--features", str(tmp_path / "wide.npy"))
    (tmp_path / "text.npy").write_text("not numpy")
    assert "text.npy is not a NumPy .npy or .npz file" in \
        fails("--features", str(tmp_path / "text.npy"))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    assert "objects.npy is not a NumPy" in fails("--features", str(tmp_path / "objects.npy"))
    assert "no such file" in fails("--features", str(tmp_path / "absent.npy"))
    assert "--with-alignment applies to text input" in \
        fails("--features", str(tmp_path / "wide.npy"), "--with-alignment")
    assert "--features FILE" in fails(stdin="a b\n")


def test_inspect_shows_the_source_kind(las, capsys):
    from rnnsearch.cli import main
    assert main(["inspect", las.model_path]) == 0
    out = capsys.readouterr().out
    assert "source:     features: frames [T, 7]" in out
    assert "3 x lstm 6, bidirectional (concat); subsampling concat 1x2x2x1" in out
    assert "vocabulary: source none, target 20" in out


@pytest.mark.parametrize("attention", [
    {},   # global additive
    {"type": "location", "location": {"channels": 3, "kernel_size": 5}},   # ESPnet's AttLoc
])
def test_attention_constraint_over_frames(attention, tmp_path):
    """translate_features takes the decode-time attention constraint too (ESPnet applies
    it to speech): engine = reference with the same window, every row inside it, and the
    constraint changed something (so the comparison is not vacuous)."""
    model, translator = _export(_config(MATRIX["las-pyramid"]["encoder"],
                                        attention={"score": "additive", "size": 9,
                                                   **attention}),
                                str(tmp_path / "m"), seed=11)
    sources, window = _frames(6, seed=5, lengths=[6, 11, 19, 27, 33, 40]), (0, 2)
    vocab = vocabularies(V_SOURCE, V_TARGET)[1]
    changed = False
    for beam_size in (1, 5):
        options = dict(beam_size=beam_size, num_hypotheses=beam_size, max_decoding_length=20,
                       return_scores=True, return_attention=True)
        results = translator.translate_features(sources, attention_constraint=window,
                                                **options)
        free = translator.translate_features(sources, **options)
        changed |= any(a.scores != b.scores for a, b in zip(results, free))
        for frames, result in zip(sources, results):
            expected = reference_translate(model, frames, BOS, EOS, beam_size=beam_size,
                                           num_hypotheses=beam_size, max_decoding_length=20,
                                           attention_constraint=window)
            assert result.hypotheses == [[vocab[i] for i in h.tokens] for h in expected]
            for score, attention_rows, ref in zip(result.scores, result.attention, expected):
                assert score == pytest.approx(ref.score, rel=1e-4, abs=1e-4)
                np.testing.assert_allclose(attention_rows, ref.attention, atol=1e-5)
            last = 0
            for row in result.attention[0]:
                assert np.all(row[:last] == 0) and np.all(row[last + 2:] == 0)
                last = int(row.argmax())
    assert changed
    with pytest.raises(ValueError, match="attention_constraint"):
        translator.translate_features(sources, attention_constraint=(0, 0))
