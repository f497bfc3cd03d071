"""What the per-call fast paths reuse or skip (issue 20, part 4) must not change a result:
the typed copy of source ids against NumPy's, calls of every shape one after another and
at once from several threads against each call made alone, a batch against its sentences
one by one on the benchmark's small OpenNMT-shaped model."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import rnnsearch
from rnnsearch.random_model import write_random_model

SMALL_LSTM = {   # tools/bench_overhead.py's small model, at test size
    "format": "rnnsearch-model", "format_version": 1,
    "encoder": {"embedding_size": 16, "cell": "lstm", "hidden_size": 24, "num_layers": 2},
    "bridge": {"type": "last"}, "attention": {"score": "general"},
    "decoder": {"type": "luong", "embedding_size": 16, "cell": "lstm", "hidden_size": 24,
                "num_layers": 2, "input_feeding": True},
}
NO_ATTENTION = {
    "format": "rnnsearch-model", "format_version": 1,
    "encoder": {"embedding_size": 8, "cell": "gru", "hidden_size": 16},
    "bridge": {"type": "last"}, "attention": None,
    "decoder": {"type": "none", "embedding_size": 8, "cell": "gru", "hidden_size": 16},
}


@pytest.fixture(scope="module")
def lstm(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("small-lstm"))
    write_random_model(path, SMALL_LSTM, 40, 30, seed=3)
    return rnnsearch.Translator(path)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("no-attention"))
    write_random_model(path, NO_ATTENTION, 20, 20, seed=4)
    return rnnsearch.Translator(path)


def _sources(n, seed, vocab=40, longest=30):
    rng = np.random.default_rng(seed)
    return [[int(i) for i in rng.integers(4, vocab, rng.integers(1, longest))]
            for _ in range(n)]


def _plain(results):
    """Hypotheses as comparable values: tokens, score bits, attention bytes."""
    return [[(h[0], np.float32(h[1]).tobytes(), None if h[2] is None else h[2].tobytes())
             for h in hyps] for hyps in results]


def test_typed_id_copy_matches_numpy_conversion(lstm):
    engine = lstm._engine
    sources = _sources(7, seed=1)
    expected = _plain(engine.translate(sources, beam_size=3, num_hypotheses=2))
    as_arrays = [np.array(s, dtype=np.int64) for s in sources]    # NumPy's conversion
    as_tuples = [tuple(s) for s in sources]
    assert _plain(engine.translate(as_arrays, beam_size=3, num_hypotheses=2)) == expected
    assert _plain(engine.translate(as_tuples, beam_size=3, num_hypotheses=2)) == expected
    for bad in ([[4, 40]], [[-1]], [[4, 2**40]], [(5, 6), [4, 99]]):
        with pytest.raises(ValueError, match="source ids must be in"):
            engine.translate(bad)
    with pytest.raises(ValueError, match="source ids must be in"):
        engine.translate([np.array([4, 40])])
    # empty sources beside others: one empty hypothesis, the others unchanged
    mixed = engine.translate([[], sources[0], []], beam_size=3, num_hypotheses=2)
    assert [h[0] for h in mixed[0]] == [[]] and [h[0] for h in mixed[2]] == [[]]
    assert _plain([mixed[1]]) == expected[:1]


@pytest.mark.parametrize("beam", [1, 5])
def test_batch_is_one_by_one_bit_for_bit(lstm, beam):
    engine = lstm._engine
    sources = _sources(30, seed=2)
    options = dict(beam_size=beam, num_hypotheses=beam, max_length=40, return_attention=True,
                   return_log_prob=True)
    batch = engine.translate(sources, **options)
    for source, together in zip(sources, batch):
        assert _plain([engine.translate([source], **options)[0]]) == _plain([together])


def test_calls_of_every_shape_in_turn_and_at_once(lstm, plain):
    """Calls that differ in batch, beam, source length and options, made in turn (each
    after a larger or smaller one) and from 4 threads at once, give what each gives in a
    fresh process-free first call: nothing of one call leaks into the next."""
    calls = []
    for translator in (lstm, plain):
        vocab = len(translator.source_vocab)
        for n, beam, longest in ((1, 1, 2), (30, 5, 40), (2, 3, 8), (12, 1, 25), (1, 5, 60)):
            calls.append((translator, _sources(n, seed=n * 7 + beam, vocab=vocab,
                                               longest=longest),
                          dict(beam_size=beam, num_hypotheses=1, max_length=30,
                               return_attention=translator is lstm and beam == 5)))
    alone = [_plain(t._engine.translate(s, **o)) for t, s, o in calls]
    for order in (list(range(len(calls))), list(reversed(range(len(calls))))):
        for i in order:
            t, s, o = calls[i]
            assert _plain(t._engine.translate(s, **o)) == alone[i]

    def work(worker):   # every call, in an order of its own, three times
        got = []
        for round_ in range(3):
            for i in range(len(calls)):
                k = (i + worker + round_) % len(calls)
                t, s, o = calls[k]
                got.append((k, _plain(t._engine.translate(s, **o))))
        return got

    with ThreadPoolExecutor(max_workers=4) as pool:   # a worker's exception re-raises here
        outcomes = [k_value for got in pool.map(work, range(4)) for k_value in got]
    assert len(outcomes) == 4 * 3 * len(calls)
    for k, value in outcomes:
        assert value == alone[k]


def test_translator_results_without_attention(lstm, plain):
    """translate_batch builds attention arrays only when asked (zeros for an
    attention-free model), and the hypotheses and scores do not depend on it."""
    tokens = [["s1", "s2", "s3"], ["s4"]]
    for translator in (lstm, plain):
        bare = translator.translate_batch(tokens, beam_size=2, return_scores=True)
        full = translator.translate_batch(tokens, beam_size=2, return_scores=True,
                                          return_attention=True)
        for a, b in zip(bare, full):
            assert a.attention == []
            assert a.hypotheses == b.hypotheses and a.scores == b.scores
            assert [m.shape[0] for m in b.attention] == [len(h) for h in b.hypotheses]
    zeros = plain.translate_batch(tokens, beam_size=2, return_attention=True)[0].attention[0]
    assert zeros.shape[1] == 3 and not zeros.any()
