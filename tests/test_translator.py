"""Translator behaviour that needs no reference framework: batching, n-best, penalties,
threads and bad input."""
import threading

import numpy as np
import pytest

import rnnsearch


@pytest.fixture(scope="module")
def translator(small_model_dir):
    return rnnsearch.Translator(small_model_dir)


def _sources(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return [[f"s{i}" for i in rng.integers(0, 26, rng.integers(1, 40))] for _ in range(n)]


OPTIONS = dict(beam_size=4, num_hypotheses=3, max_decoding_length=30, return_scores=True,
               return_attention=True)


def _same(a, b):
    assert a.hypotheses == b.hypotheses
    assert a.scores == b.scores  # bit-identical: batching must not change arithmetic
    for x, y in zip(a.attention, b.attention):
        np.testing.assert_array_equal(x, y)


def test_batch_equals_one_by_one(translator):
    sources = _sources()
    batched = translator.translate_batch(sources, **OPTIONS)
    for source, result in zip(sources, batched):
        _same(translator.translate_batch([source], **OPTIONS)[0], result)


def test_nbest_sorted_distinct_and_shaped(translator):
    for source, result in zip(_sources(), translator.translate_batch(_sources(), **OPTIONS)):
        assert len(result.hypotheses) == 3
        assert result.scores == sorted(result.scores, reverse=True)
        assert len({tuple(h) for h in result.hypotheses}) == 3
        for hyp, att in zip(result.hypotheses, result.attention):
            assert att.shape == (len(hyp), len(source))
            np.testing.assert_allclose(att.sum(axis=1), 1.0, rtol=1e-5)


def test_length_penalty_reranks_by_the_gnmt_formula(translator):
    sources = _sources(8)
    plain = translator.translate_batch(sources, beam_size=5, num_hypotheses=5,
                                       max_decoding_length=12, return_scores=True)
    alpha = 1.5
    penalized = translator.translate_batch(sources, beam_size=5, num_hypotheses=5,
                                           max_decoding_length=12, return_scores=True,
                                           length_penalty=alpha)
    for p, q in zip(plain, penalized):
        # the search is the same; only the final scores and their order change
        expected = []
        for hyp, score in zip(p.hypotheses, p.scores):
            length = len(hyp) + (1 if len(hyp) < 12 else 0)  # + EOS unless forced to stop
            expected.append((score / ((5 + length) / 6) ** alpha, hyp))
        expected.sort(key=lambda e: -e[0])
        assert [h for _, h in expected] == q.hypotheses
        np.testing.assert_allclose([s for s, _ in expected], q.scores, rtol=1e-5)


def test_normalize_scores_divides_by_length(translator):
    sources = _sources(6)
    plain = translator.translate_batch(sources, beam_size=3, num_hypotheses=3,
                                       max_decoding_length=10, return_scores=True)
    average = translator.translate_batch(sources, beam_size=3, num_hypotheses=3,
                                         max_decoding_length=10, return_scores=True,
                                         normalize_scores=True)
    for p, q in zip(plain, average):
        expected = sorted(((s / (len(h) + (len(h) < 10)), h) for h, s in
                           zip(p.hypotheses, p.scores)), key=lambda e: -e[0])
        assert [h for _, h in expected] == q.hypotheses


def test_min_and_max_length(translator):
    for result in translator.translate_batch(_sources(6), beam_size=3, min_decoding_length=7,
                                             max_decoding_length=9):
        assert 7 <= len(result.hypotheses[0]) <= 9


def test_threads_match_serial(translator):
    sources = _sources(16, seed=3)
    serial = [translator.translate_batch(sources[i::4], **OPTIONS) for i in range(4)]
    parallel = [None] * 4
    errors = []

    def work(i):
        try:
            for _ in range(3):
                parallel[i] = translator.translate_batch(sources[i::4], **OPTIONS)
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for s, p in zip(serial, parallel):
        for a, b in zip(s, p):
            _same(a, b)


def test_empty_line_gives_empty_hypothesis(translator):
    result = translator.translate_batch([[], ["s1"]], return_scores=True,
                                        return_attention=True)
    assert result[0].hypotheses == [[]] and result[0].scores == [0.0]
    assert result[0].attention[0].shape == (0, 0)
    assert translator.translate([""]) == [""]


def test_unknown_tokens_map_to_unk(translator):
    only_unknown = translator.translate_batch([["zzz", "qqq"]], beam_size=2)
    as_unk = translator.translate_batch([["<unk>", "<unk>"]], beam_size=2)
    assert only_unknown[0].hypotheses == as_unk[0].hypotheses
    assert translator.unknown_tokens(["zzz", "s1"]) == ["zzz"]


def test_long_source_is_an_error_or_truncated(small_model_dir, tmp_path):
    import json
    import shutil
    path = tmp_path / "m"
    shutil.copytree(small_model_dir, path)
    config = json.loads((path / "config.json").read_text())
    config["source"]["max_length"] = 10
    (path / "config.json").write_text(json.dumps(config))
    tr = rnnsearch.Translator(str(path))
    long = [f"s{i % 20}" for i in range(25)]
    with pytest.raises(ValueError, match="longer than the model allows"):
        tr.translate_batch([long])
    cut = tr.translate_batch([long], truncate=True)
    assert cut[0].hypotheses == tr.translate_batch([long[:10]])[0].hypotheses


@pytest.mark.parametrize("options, message", [
    (dict(beam_size=0), "beam_size"),
    (dict(max_decoding_length=0), "max_decoding_length"),
    (dict(beam_size=2, num_hypotheses=3), "num_hypotheses"),
    (dict(min_decoding_length=5, max_decoding_length=3), "min_decoding_length"),
    (dict(length_penalty=float("nan")), "length_penalty"),
])
def test_bad_options(translator, options, message):
    with pytest.raises(ValueError, match=message):
        translator.translate_batch([["s1"]], **options)


def test_bad_source_types(translator):
    with pytest.raises(TypeError):
        translator.translate_batch("s1 s2")
    with pytest.raises(TypeError):
        translator.translate_batch([[1, 2]])
    with pytest.raises(TypeError):
        translator.translate("s1 s2")


def test_engine_rejects_out_of_range_ids(translator):
    with pytest.raises(ValueError, match="source ids"):
        translator._engine.translate([[0, 10_000]])


def test_nan_weights_raise_not_crash(small_model_dir, tmp_path):
    import shutil
    from rnnsearch.safetensors_io import read_safetensors, write_safetensors
    path = tmp_path / "nan"
    shutil.copytree(small_model_dir, path)
    tensors, _ = read_safetensors(str(path / "model.safetensors"))
    tensors = {k: np.array(v) for k, v in tensors.items()}
    tensors["decoder.output.weight"][:] = np.nan
    write_safetensors(str(path / "model.safetensors"), tensors)
    with pytest.raises(rnnsearch.ModelError, match="'decoder.output.weight' holds NaN"):
        rnnsearch.Translator(str(path))


def test_bad_compute_type_and_threads(small_model_dir):
    with pytest.raises(ValueError, match="compute_type"):
        rnnsearch.Translator(small_model_dir, compute_type="float64")
    with pytest.raises(ValueError, match="intra_threads"):
        rnnsearch.Translator(small_model_dir, intra_threads=0)


def test_intra_threads_give_serial_results(small_model_dir, translator):
    sources = _sources(13, seed=5)
    threaded = rnnsearch.Translator(small_model_dir, intra_threads=3)
    for a, b in zip(translator.translate_batch(sources, **OPTIONS),
                    threaded.translate_batch(sources, **OPTIONS)):
        _same(a, b)
    assert threaded.translate_batch([[]] + sources[:1], **OPTIONS)[0].hypotheses == [[]]


def test_int8_agrees_with_float32_and_is_deterministic(small_model_dir, translator):
    sources = _sources(16, seed=11)
    int8 = rnnsearch.Translator(small_model_dir, compute_type="int8")
    exact = translator.translate_batch(sources, beam_size=1, max_decoding_length=20)
    quantized = int8.translate_batch(sources, beam_size=1, max_decoding_length=20)
    same = sum(a.hypotheses == b.hypotheses for a, b in zip(exact, quantized))
    assert same >= 12  # a tiny random model is the worst case for quantization
    for source, result in zip(sources, int8.translate_batch(sources, **OPTIONS)):
        _same(int8.translate_batch([source], **OPTIONS)[0], result)


def test_suppress_tokens_option_and_config(small_model_dir, tmp_path):
    import json
    import shutil
    tr = rnnsearch.Translator(small_model_dir)
    sources = [["s1", "s2", "s3"], ["s4", "s5"], ["s6"]]
    plain = tr.translate_batch(sources, beam_size=3)
    banned = plain[0].hypotheses[0][0]
    results = tr.translate_batch(sources, beam_size=3, suppress_tokens=[banned])
    assert all(banned not in r.hypotheses[0] for r in results)
    with pytest.raises(ValueError, match="not in the target vocabulary"):
        tr.translate_batch(sources, suppress_tokens=["nope"])
    with pytest.raises(ValueError, match="cannot be suppressed"):
        tr.translate_batch(sources, suppress_tokens=["</s>"])
    # the same from the model directory's config
    path = tmp_path / "m"
    shutil.copytree(small_model_dir, path)
    config = json.loads((path / "config.json").read_text())
    config["target"]["suppress_tokens"] = [banned]
    (path / "config.json").write_text(json.dumps(config))
    assert [r.hypotheses for r in rnnsearch.Translator(str(path)).translate_batch(
        sources, beam_size=3)] == [r.hypotheses for r in results]
    config["target"]["suppress_tokens"] = ["nope"]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(rnnsearch.ModelError, match="target.suppress_tokens"):
        rnnsearch.Translator(str(path))
