"""score_batch (forced decoding in the C engine) and target_prefix (forced inside the C
search): against the PyTorch reference (teacher forcing, and its search with the prefix
forced), against the engine's own beam search totals (bit for bit), batch = one by one."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnsearch  # noqa: E402
from rnnsearch.random_model import vocabularies  # noqa: E402
from rnnsearch.reference import export_model_dir, random_model  # noqa: E402
from rnnsearch.reference import translate as reference_translate  # noqa: E402

V_SOURCE, V_TARGET = 30, 25
CONFIGS = {
    "luong-lstm-feed": {
        "encoder": {"embedding_size": 8, "cell": "lstm", "hidden_size": 8,
                    "bidirectional": True},
        "bridge": {"type": "dense", "lstm_cell": "bridged"},
        "attention": {"score": "general"},
        "decoder": {"type": "luong", "embedding_size": 8, "cell": "lstm", "hidden_size": 16,
                    "input_feeding": True}},
    "bahdanau-gru-maxout": {
        "encoder": {"embedding_size": 8, "cell": "gru", "hidden_size": 8,
                    "bidirectional": True},
        "bridge": {"type": "mean"},
        "attention": {"score": "additive", "size": 10},
        "decoder": {"type": "bahdanau", "embedding_size": 8, "cell": "gru", "hidden_size": 16,
                    "readout": "maxout", "readout_size": 12}},
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def models(request, tmp_path_factory):
    config = dict(CONFIGS[request.param], format="rnnsearch-model", format_version=1)
    model = random_model(config, V_SOURCE, V_TARGET, seed=7)
    path = str(tmp_path_factory.mktemp(request.param))
    src, tgt = vocabularies(V_SOURCE, V_TARGET)
    export_model_dir(model, path, src, tgt)
    return model, rnnsearch.Translator(path), rnnsearch.Translator(path, intra_threads=2)


def _sources(n, seed=0):
    rng = np.random.default_rng(seed)
    return [[f"s{i}" for i in rng.integers(0, V_SOURCE - 4, rng.integers(1, 9))]
            for _ in range(n)]


def _targets(n, seed=1):
    rng = np.random.default_rng(seed)
    return [[f"t{i}" for i in rng.integers(0, V_TARGET - 4, rng.integers(0, 7))]
            for _ in range(n)]


def _ids(translator, tokens, side):
    vocab = translator.source_vocab if side == "source" else translator.target_vocab
    return [vocab.ids[t] for t in tokens]


def test_scores_equal_the_reference_under_teacher_forcing(models):
    model, translator, _ = models
    sources, targets = _sources(12), _targets(12)
    results = translator.score_batch(sources, targets)
    eos = translator.target_vocab.ids["</s>"]
    bos = translator.target_vocab.ids["<s>"]
    for source, target, result in zip(sources, targets, results):
        assert result.tokens == target + ["</s>"]
        src = torch.tensor([_ids(translator, source, "source")])
        tgt = _ids(translator, target, "target")
        with torch.no_grad():
            log_probs = model(src, torch.tensor([len(source)]), torch.tensor([[bos] + tgt]))
        expected = log_probs[0, torch.arange(len(tgt) + 1), torch.tensor(tgt + [eos])]
        np.testing.assert_allclose(result.log_probs, expected.numpy(), rtol=1e-4, atol=1e-4)
        assert result.cumulated_score() == pytest.approx(float(expected.sum()), abs=1e-3)
        assert result.normalized_score() == pytest.approx(
            result.cumulated_score() / (len(target) + 1))


def test_score_of_a_searched_hypothesis_is_its_beam_total_bit_for_bit(models):
    _, translator, _ = models
    sources = _sources(10, seed=3)
    results = translator.translate_batch(sources, beam_size=4, num_hypotheses=4,
                                         max_decoding_length=40, return_scores=True)
    pairs = [(s, h, score) for s, r in zip(sources, results)
             for h, score in zip(r.hypotheses, r.scores)]
    assert len(pairs) == 40
    scored = translator.score_batch([p[0] for p in pairs], [p[1] for p in pairs])
    for (_, hyp, score), result in zip(pairs, scored):
        # a hypothesis ended by EOS scored it; one cut at the length limit did not
        ended = len(hyp) < 40
        if ended:
            assert result.total == score
        total = np.float32(0)
        for value in result.log_probs[:None if ended else -1]:  # the search's order
            total = np.float32(total + np.float32(value))
        assert float(total) == score


def test_scoring_a_batch_equals_one_by_one_and_any_thread_count(models):
    _, translator, threaded = models
    sources, targets = _sources(9, seed=5), _targets(9, seed=6)
    batch = translator.score_batch(sources, targets)
    assert [r.log_probs for r in threaded.score_batch(sources, targets)] == \
        [r.log_probs for r in batch]
    for source, target, result in zip(sources, targets, batch):
        one = translator.score_batch([source], [target])[0]
        assert one.log_probs == result.log_probs and one.total == result.total


def test_score_bad_input(models):
    _, translator, _ = models
    with pytest.raises(ValueError, match="empty"):
        translator.score_batch([[]], [["t1"]])
    with pytest.raises(ValueError, match="sources but"):
        translator.score_batch([["s1"]], [])
    with pytest.raises(TypeError):
        translator.score_batch(["s1 s2"], [["t1"]])
    unknown = translator.score_batch([["s1"]], [["never-seen"]])[0]
    as_unk = translator.score_batch([["s1"]], [["<unk>"]])[0]
    assert unknown.log_probs == as_unk.log_probs and unknown.tokens[0] == "never-seen"


@pytest.mark.parametrize("beam", [1, 4])
def test_prefix_equals_the_reference_search_with_the_prefix_forced(models, beam):
    model, translator, _ = models
    sources = _sources(5, seed=8)
    rng = np.random.default_rng(9)
    prefixes = [[f"t{i}" for i in rng.integers(0, V_TARGET - 4, rng.integers(0, 4))]
                for _ in sources]
    results = translator.translate_batch(sources, beam_size=beam, num_hypotheses=beam,
                                         max_decoding_length=12, return_scores=True,
                                         target_prefix=prefixes)
    bos = translator.target_vocab.ids["<s>"]
    eos = translator.target_vocab.ids["</s>"]
    tokens = translator.target_vocab.tokens
    for source, prefix, result in zip(sources, prefixes, results):
        expected = reference_translate(
            model, _ids(translator, source, "source"), bos, eos, beam_size=beam,
            num_hypotheses=beam, max_decoding_length=12,
            prefix=tuple(_ids(translator, prefix, "target")))
        assert result.hypotheses == [[tokens[i] for i in h.tokens] for h in expected]
        np.testing.assert_allclose(result.scores, [h.score for h in expected], atol=1e-4)
        for hyp in result.hypotheses:
            assert hyp[:len(prefix)] == prefix


def test_prefix_semantics(models):
    _, translator, threaded = models
    sources = _sources(8, seed=10)
    plain = translator.translate_batch(sources, beam_size=1, max_decoding_length=20,
                                       return_scores=True)
    # greedy from a prefix the greedy search would take anyway continues the same way
    for source, result in zip(sources, plain):
        hyp = result.hypotheses[0]
        for k in range(len(hyp) + 1):
            again = translator.translate_batch([source], beam_size=1, max_decoding_length=20,
                                               target_prefix=[hyp[:k]])[0]
            assert again.hypotheses[0] == hyp
    # the score leaves the prefix out: the log-probabilities after it, summed in order
    prefixes = [["t1", "t2"]] * len(sources)
    forced = translator.translate_batch(sources, beam_size=1, max_decoding_length=20,
                                        return_scores=True, target_prefix=prefixes)
    for source, result in zip(sources, forced):
        hyp = result.hypotheses[0]
        if len(hyp) == 20:
            continue
        scored = translator.score_batch([source], [hyp])[0]
        total = np.float32(0)
        for value in scored.log_probs[2:]:
            total = np.float32(total + np.float32(value))
        assert float(total) == result.scores[0]
    # the prefix counts towards max_decoding_length
    long = translator.translate_batch(sources[:1], beam_size=3, max_decoding_length=3,
                                      target_prefix=[["t1", "t2", "t3", "t4"]])[0]
    assert long.hypotheses[0] == ["t1", "t2", "t3"]
    # batch = one by one, any thread count; None means no prefix
    mixed = [["t3"], None, [], ["t1", "t1", "t1"]] * 2
    batch = translator.translate_batch(sources, beam_size=3, num_hypotheses=2,
                                       return_scores=True, target_prefix=mixed)
    assert [r.hypotheses for r in threaded.translate_batch(
        sources, beam_size=3, num_hypotheses=2, target_prefix=mixed)] == \
        [r.hypotheses for r in batch]
    for source, prefix, result in zip(sources, mixed, batch):
        one = translator.translate_batch([source], beam_size=3, num_hypotheses=2,
                                         return_scores=True, target_prefix=[prefix])[0]
        assert one.hypotheses == result.hypotheses and one.scores == result.scores


def test_prefix_bad_input(models):
    _, translator, _ = models
    with pytest.raises(ValueError, match="end-of-sentence"):
        translator.translate_batch([["s1"]], target_prefix=[["t1", "</s>"]])
    with pytest.raises(ValueError, match="entries"):
        translator.translate_batch([["s1"]], target_prefix=[["t1"], ["t2"]])
    with pytest.raises(TypeError):
        translator.translate_batch([["s1"]], target_prefix=["t1 t2"])
    with pytest.warns(UserWarning, match="unknown"):
        translator.translate_batch([["s1"]], target_prefix=[["nope"]])
