"""translate_iterable, generate_tokens and translate_batch(callback=...) against plain
translate_batch: same results, in input order, and early stopping that ends the search
and frees what it held."""
import ctypes
import gc
import threading

import pytest

from rnnsearch import Translator
from rnnsearch.streaming import GenerationStepResult, split_batches
from sentences import endless_sources, random_sentences, same_results


@pytest.fixture(scope="module")
def translator(small_translator):
    return small_translator


def _sources(translator, n, seed=0, longest=12):
    return random_sentences(translator, n, seed, shortest=0, longest=longest)


@pytest.mark.parametrize("max_batch_size,batch_type", [(1, "examples"), (3, "examples"),
                                                       (64, "examples"), (20, "tokens"),
                                                       (5, "tokens")])
def test_translate_iterable_matches_translate_batch_in_order(translator, max_batch_size,
                                                             batch_type):
    sources = _sources(translator, 150)
    expected = translator.translate_batch(sources, beam_size=3, return_scores=True)
    stream = translator.translate_iterable(iter(sources), max_batch_size=max_batch_size,
                                           batch_type=batch_type, beam_size=3,
                                           return_scores=True)
    same_results(list(stream), expected)


def test_translate_iterable_reads_lazily_and_stops_cleanly(translator):
    read = []
    stream = translator.translate_iterable(endless_sources(read), max_batch_size=4,
                                           beam_size=2)
    first = [next(stream) for _ in range(10)]
    assert len(read) < 4 * 16 * 3          # a couple of read-ahead windows, not everything
    stream.close()
    expected = translator.translate_batch([["s3"], ["s1", "s2"]] * 5, beam_size=2)
    same_results(first, expected)


def test_split_batches_sorts_by_length_and_respects_the_budget():
    examples = [["a"] * n for n in (2, 7, 1, 4, 4, 3)]
    batches = split_batches(examples, 8, "tokens")
    assert [i for b in batches for i in b] == [1, 3, 4, 5, 0, 2]   # longest first
    for batch in batches:   # padded size within the budget, unless one example alone
        assert len(batch) == 1 or len(batch) * max(len(examples[i]) for i in batch) <= 8
    assert split_batches(examples, 4, "examples") == [[1, 3, 4, 5], [0, 2]]


def test_translate_iterable_bad_arguments(translator):
    with pytest.raises(ValueError, match="max_batch_size"):
        translator.translate_iterable([["s1"]], max_batch_size=0)
    with pytest.raises(ValueError, match="batch_type"):
        translator.translate_iterable([["s1"]], batch_type="sentences")
    with pytest.raises(ValueError, match="beam_size"):   # the options' own checks
        list(translator.translate_iterable([["s1"]], beam_size=0))


def test_generate_tokens_yields_the_greedy_translation(translator):
    eos = translator.config["special_tokens"]["eos"]
    for source in _sources(translator, 12, seed=3):
        expected = translator.translate_batch([source], beam_size=1, return_scores=True,
                                              max_decoding_length=40)[0]
        steps = list(translator.generate_tokens(source, max_decoding_length=40))
        if not source:   # nothing to decode: one empty hypothesis, no step
            assert steps == [] and expected.hypotheses == [[]]
            continue
        tokens = [s.token for s in steps]
        assert [s.step for s in steps] == list(range(len(steps)))
        assert all(isinstance(s, GenerationStepResult) and s.batch_id == 0 for s in steps)
        assert [s.is_last for s in steps] == [False] * (len(steps) - 1) + [True]
        if tokens and tokens[-1] == eos:      # ended by the end token, as in CTranslate2
            tokens = tokens[:-1]
        assert tokens == expected.hypotheses[0]
        assert [translator.target_vocab.tokens[s.token_id] for s in steps] == \
            [s.token for s in steps]
        assert sum(s.log_prob for s in steps) == pytest.approx(expected.scores[0], abs=1e-4)


def test_callback_reports_every_sentence_with_threads(small_model_dir, translator):
    sources = _sources(translator, 17, seed=5)
    threaded = Translator(small_model_dir, intra_threads=3)
    seen = {}
    lock = threading.Lock()

    def callback(step):
        with lock:
            seen.setdefault(step.batch_id, []).append(step.token)

    results = threaded.translate_batch(sources, beam_size=1, callback=callback,
                                       max_decoding_length=30)
    same_results(results, translator.translate_batch(sources, beam_size=1,
                                                     max_decoding_length=30))
    eos = translator.config["special_tokens"]["eos"]
    for i, result in enumerate(results):
        if sources[i]:
            got = seen[i][:-1] if seen[i][-1] == eos else seen[i]
            assert got == result.hypotheses[0]
        else:
            assert i not in seen       # empty sources are not decoded


def test_callback_returning_true_ends_that_sentence_only(translator):
    sources = _sources(translator, 6, seed=7, longest=8)
    full = translator.translate_batch(sources, beam_size=1, max_decoding_length=30)
    results = translator.translate_batch(sources, beam_size=1, max_decoding_length=30,
                                         callback=lambda s: s.batch_id == 2 and s.step == 1)
    for i, (got, want) in enumerate(zip(results, full)):
        if i == 2 and len(want.hypotheses[0]) > 2:
            assert got.hypotheses[0] == want.hypotheses[0][:2]
        else:
            assert got.hypotheses == want.hypotheses


def test_callback_errors(translator):
    with pytest.raises(ValueError, match="beam_size=1"):
        translator.translate_batch([["s1"]], beam_size=2, callback=lambda s: False)

    def fails(step):
        raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        translator.translate_batch(_sources(translator, 4), beam_size=1, callback=fails)
    with pytest.raises(ValueError, match="beam_size must be 1"):
        list(translator.generate_tokens(["s1"], beam_size=4))


def _heap_in_use() -> int:
    """Bytes malloc has handed out and not had back (glibc's mallinfo2)."""
    libc = ctypes.CDLL("libc.so.6")

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd


def test_closing_generate_tokens_stops_the_search_and_frees_it(translator):
    source = _sources(translator, 1, seed=11, longest=12)[0] or ["s1"]
    whole = translator.translate_batch([source], beam_size=1, max_decoding_length=200)[0]
    assert len(whole.hypotheses[0]) > 5, "the test needs a long translation"
    threads_before = threading.active_count()

    def stop_after_three():
        stream = translator.generate_tokens(source, max_decoding_length=200)
        steps = [next(stream) for _ in range(3)]
        stream.close()
        return steps

    for _ in range(20):   # warm up allocator pools
        stop_after_three()
    gc.collect()
    before = _heap_in_use()
    for _ in range(300):
        steps = stop_after_three()
    gc.collect()
    grown = _heap_in_use() - before
    assert [s.token for s in steps] == whole.hypotheses[0][:3]
    assert threading.active_count() == threads_before   # the decoding thread has ended
    # a search holds kilobytes; a leak of 350 bytes per stopped search would show
    assert grown < 100 * 1024, f"{grown} bytes still allocated after 300 stopped streams"


def test_generate_tokens_with_a_target_prefix_yields_what_follows_it(translator):
    source = _sources(translator, 1, seed=13)[0] or ["s1"]
    prefix = translator.target_vocab.tokens[5:7]
    whole = translator.translate_batch([source], beam_size=1, target_prefix=[prefix],
                                       max_decoding_length=30)[0].hypotheses[0]
    steps = list(translator.generate_tokens(source, target_prefix=prefix,
                                            max_decoding_length=30))
    eos = translator.config["special_tokens"]["eos"]
    assert whole[:2] == prefix
    assert steps[0].step == 2                      # steps count the forced tokens, as CT2
    assert [s.token for s in steps if s.token != eos] == whole[2:]
