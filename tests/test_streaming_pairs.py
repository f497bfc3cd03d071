"""translate_iterable with an iterable of target prefixes, and score_iterable: the same
results as translate_batch / score_batch on the same examples, in input order, whatever
the batching; iterables of different lengths refused as CTranslate2 refuses them."""
import itertools
import warnings

import numpy as np
import pytest

from sentences import endless_sources, random_sentences, same_results


@pytest.fixture(scope="module")
def translator(small_translator):
    return small_translator


def _prefixes(translator, n, seed=0):
    """Target prefixes of 0 to 4 tokens, None for some, an unknown token in one."""
    rng = np.random.default_rng(seed)
    vocab = [t for t in translator.target_vocab.tokens[4:]]
    prefixes = [[str(rng.choice(vocab)) for _ in range(rng.integers(0, 5))] for _ in range(n)]
    for i in range(0, n, 7):
        prefixes[i] = None
    prefixes[3] = ["not-a-target-token"]
    return prefixes


@pytest.mark.parametrize("max_batch_size,batch_type", [(1, "examples"), (4, "examples"),
                                                       (64, "examples"), (12, "tokens")])
def test_translate_iterable_with_prefixes_matches_translate_batch(translator, max_batch_size,
                                                                  batch_type):
    sources = random_sentences(translator, 90, seed=3, longest=10)
    prefixes = _prefixes(translator, 90)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the unknown prefix token (UNK), as translate_batch
        expected = translator.translate_batch(sources, beam_size=3, return_scores=True,
                                              target_prefix=prefixes, max_decoding_length=12)
        stream = translator.translate_iterable(iter(sources), iter(prefixes),
                                               max_batch_size=max_batch_size,
                                               batch_type=batch_type, beam_size=3,
                                               return_scores=True, max_decoding_length=12)
        got = list(stream)
    same_results(got, expected)
    for prefix, result in zip(prefixes, got):     # and each one starts with its prefix
        if prefix and prefix != ["not-a-target-token"]:
            assert result.hypotheses[0][:len(prefix)] == prefix


def test_translate_iterable_prefix_longer_than_max_decoding_length_is_cut(translator):
    # translate_batch's semantics: the prefix counts towards max_decoding_length
    vocab = translator.target_vocab.tokens[4:]
    long_prefix = [vocab[i % len(vocab)] for i in range(7)]
    got = list(translator.translate_iterable([["s1", "s2"]], [long_prefix],
                                             max_decoding_length=3))
    assert got[0].hypotheses[0] == long_prefix[:3]


def test_translate_iterable_unknown_prefix_tokens_warn(translator):
    with pytest.warns(UserWarning, match="unknown"):
        list(translator.translate_iterable([["s1"]], [["not-a-target-token"]]))


def test_translate_iterable_iterables_of_different_lengths(translator):
    sources = random_sentences(translator, 5, seed=4)
    for prefixes in ([["t1"]] * 4, [["t1"]] * 6):
        stream = translator.translate_iterable(iter(sources), iter(prefixes),
                                               max_batch_size=1)
        with pytest.raises(ValueError, match="source and target_prefix do not have the "
                                             "same length"):
            list(stream)
    with pytest.raises(TypeError, match="target_prefix"):
        translator.translate_iterable([["s1"]], "t1 t2")
    with pytest.raises(TypeError):
        translator.translate_iterable([["s1"]], 3)
    with pytest.raises(ValueError, match="end-of-sentence"):     # translate_batch's checks
        list(translator.translate_iterable([["s1"]], [["</s>"]]))


@pytest.mark.parametrize("max_batch_size,batch_type", [(1, "examples"), (5, "examples"),
                                                       (64, "examples"), (15, "tokens")])
def test_score_iterable_matches_score_batch(translator, max_batch_size, batch_type):
    sources = random_sentences(translator, 80, seed=5, longest=10)
    targets = [r.hypotheses[0] for r in translator.translate_batch(
        sources, beam_size=2, max_decoding_length=8)]
    targets[7] = targets[7] + ["not-a-target-token"]      # scored as UNK, as score_batch
    targets[9] = []                                       # EOS alone
    expected = translator.score_batch(sources, targets)
    got = list(translator.score_iterable(iter(sources), iter(targets),
                                         max_batch_size=max_batch_size,
                                         batch_type=batch_type))
    assert len(got) == len(expected)
    for x, y in zip(got, expected):
        assert x.tokens == y.tokens and x.log_probs == y.log_probs and x.total == y.total
    # and against the beam search's own total for its best hypothesis (no penalties; the
    # random model reaches max_decoding_length, so its hypotheses have no EOS to score)
    searched = translator.translate_batch(sources[:10], beam_size=2, max_decoding_length=8,
                                          return_scores=True)
    compared = 0
    for result, scored, target in zip(searched, got, targets):
        if target == result.hypotheses[0]:
            ends = 0 if len(target) == 8 else 1
            assert sum(scored.log_probs[:len(target) + ends]) == \
                pytest.approx(result.scores[0], abs=1e-4)
            compared += 1
    assert compared >= 5


def test_score_iterable_reads_lazily(translator):
    read = []
    stream = translator.score_iterable(endless_sources(read), itertools.repeat(["t1"]),
                                       max_batch_size=4)
    first = [next(stream) for _ in range(6)]
    assert len(read) < 4 * 16 * 3
    stream.close()
    expected = translator.score_batch([["s3"], ["s1", "s2"]] * 3, [["t1"]] * 6)
    assert [r.total for r in first] == [r.total for r in expected]


def test_score_iterable_bad_arguments(translator):
    with pytest.raises(ValueError, match="max_batch_size"):
        translator.score_iterable([["s1"]], [["t1"]], max_batch_size=0)
    with pytest.raises(ValueError, match="batch_type"):
        translator.score_iterable([["s1"]], [["t1"]], batch_type="lines")
    with pytest.raises(ValueError, match="source and target do not have the same length"):
        list(translator.score_iterable([["s1"], ["s2"]], [["t1"]]))
    with pytest.raises(TypeError):
        translator.score_iterable([["s1"]], [["t1"]], beam_size=2)
    with pytest.raises(ValueError):                 # score_batch's own refusal
        list(translator.score_iterable([[]], [["t1"]]))
