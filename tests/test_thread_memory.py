"""The call buffers a thread keeps between engine calls (engine/rs_thread_memory.c): the
decoder's state and scratch and the searches' arrays are reused by the next call instead of
being asked of malloc (and paged in by the OS) again. Reuse must change no result: with every
buffer handed out filled with 0xFF bytes first (NaN floats, -1 ints), so that a value read
before it is written would show, the OpenNMT-py fixtures still decode exactly as
onmt_translate did and bit for bit as without poisoning; the same for the default search; from
several threads at once; the cache stays bounded; and a repeated call no longer page-faults
its buffers in."""
import argparse
import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import rnnsearch
from rnnsearch import _engine
from rnnsearch.random_model import write_random_model

from framework_fixtures import fixture_dir, load_expected

torch = pytest.importorskip("torch")

from rnnsearch.convert.opennmt import converter as opennmt_py  # noqa: E402

VERSION = {"OpenNMT-py 3.5.1": 3, "OpenNMT-py 2.3.0": 2, "OpenNMT-py 1.2.0": 1}
# copy attention + coverage (2.3.0), coverage (3.5.1), 1.x's shared n-gram sets
FIXTURES = ("v2_rnn_gru_mlp_copy_reuse_coverage_bridge", "brnn_lstm_general_coverage",
            "v1_brnn_lstm_mlp_copy_reuse_coverage_bridge")
SMALL_LSTM = {   # tools/bench_overhead.py's small model (the bench_opennmt lstm128 shape)
    "format": "rnnsearch-model", "format_version": 1,
    "encoder": {"embedding_size": 64, "cell": "lstm", "hidden_size": 128, "num_layers": 2},
    "bridge": {"type": "last"}, "attention": {"score": "general"},
    "decoder": {"type": "luong", "embedding_size": 64, "cell": "lstm", "hidden_size": 128,
                "num_layers": 2, "input_feeding": True},
}


@pytest.fixture
def poisoned():
    _engine.call_buffers(poison=True)
    try:
        yield
    finally:
        _engine.call_buffers(poison=False)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    made = {}
    for name in FIXTURES:
        out = str(tmp_path_factory.mktemp(name))
        opennmt_py.convert(argparse.Namespace(
            checkpoint=os.path.join(fixture_dir("opennmt"), name, "model.pt"), output=out))
        made[name] = rnnsearch.Translator(out)
    return made


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("small-lstm"))
    write_random_model(path, SMALL_LSTM, 200, 200, seed=7)
    return rnnsearch.Translator(path)


def _sources(n, seed, vocab=200, lengths=(15, 26)):
    rng = np.random.default_rng(seed)
    return [[f"s{i}" for i in rng.integers(0, vocab - 4, rng.integers(*lengths))]
            for _ in range(n)]


def _bits(results):
    return [(r.hypotheses, [np.float32(s).tobytes() for s in r.scores],
             [np.ascontiguousarray(a).tobytes() for a in r.attention]) for r in results]


def _exact_runs(name):
    expected = load_expected("opennmt", name)
    for run in expected["runs"]:
        if "results" in run and run["decoded_by"] in VERSION and \
                not run["name"].startswith("sample"):
            yield expected["sources"], run


def _decode(translator, name, sources, run):
    flags = dict(run["flags"])
    if "phrase_table" in flags:  # a file beside the fixture's model
        flags["phrase_table"] = os.path.join(fixture_dir("opennmt"), name, flags["phrase_table"])
    return translator.translate_batch(
        sources, search="opennmt", return_scores=True, return_attention=True,
        opennmt_version=VERSION[run["decoded_by"]], **flags)


@pytest.mark.parametrize("name", FIXTURES)
def test_poisoned_buffers_still_decode_as_onmt_translate(converted, poisoned, name):
    translator = converted[name]
    runs = list(_exact_runs(name))
    assert runs
    for sources, run in runs:
        got = _decode(translator, name, sources, run)
        for i, (result, reference) in enumerate(zip(got, run["results"])):
            pairs = list(zip(result.hypotheses, result.scores))
            assert len(pairs) == len(reference), (run["name"], i)
            for (hyp, score), (want, want_score) in zip(pairs, reference):
                assert " ".join(hyp) == want, (run["name"], i)
                assert math.isclose(score, want_score, rel_tol=1e-4, abs_tol=1e-4)
        _engine.call_buffers(poison=False)
        clean = _decode(translator, name, sources, run)
        _engine.call_buffers(poison=True)
        assert _bits(got) == _bits(clean), run["name"]


def test_poisoned_buffers_change_nothing_in_the_default_search(small, poisoned):
    sources = _sources(12, seed=1)
    runs = [dict(beam_size=1), dict(beam_size=5, num_hypotheses=3, return_attention=True),
            dict(beam_size=4, coverage_penalty=0.2, length_penalty=0.6,
                 return_attention=True)]
    got = [small.translate_batch(sources, return_scores=True, **o) for o in runs]
    one_by_one = [[small.translate_batch([s], return_scores=True, **o)[0] for s in sources]
                  for o in runs]
    _engine.call_buffers(poison=False)
    clean = [small.translate_batch(sources, return_scores=True, **o) for o in runs]
    for a, b, c in zip(got, one_by_one, clean):
        assert _bits(a) == _bits(c) == _bits(b)


def test_threads_reusing_their_buffers_give_the_serial_results(small, poisoned):
    """Four threads, each decoding calls of different shapes in turn (so each thread's
    cache hands blocks from one shape to the next), equal the calls made serially."""
    shapes = [(_sources(30, seed=2), dict(search="opennmt", beam_size=5)),
              (_sources(3, seed=3), dict(search="opennmt", beam_size=2, n_best=2,
                                         block_ngram_repeat=2)),
              (_sources(30, seed=4), dict(beam_size=5, return_attention=True)),
              (_sources(1, seed=5, lengths=(1, 3)), dict(beam_size=1))]
    serial = [_bits(small.translate_batch(s, return_scores=True, **o)) for s, o in shapes]

    def work(k):  # thread k takes the shapes in its own rotated order, three times
        order = [(turn, (i + k) % len(shapes)) for turn in range(3) for i in range(len(shapes))]
        return {(k, turn, j): _bits(small.translate_batch(shapes[j][0], return_scores=True,
                                                          **shapes[j][1]))
                for turn, j in order}
    out = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for part in pool.map(work, range(4)):
            out.update(part)
    assert len(out) == 4 * 3 * len(shapes)
    for (k, turn, j), bits in out.items():
        assert bits == serial[j], (k, turn, j)


def test_the_cache_is_bounded(small):
    small.translate_batch(_sources(30, seed=6), search="opennmt", beam_size=5)
    kept = _engine.call_buffers()
    assert kept > 0   # the call's buffers wait for the next call
    kept = []
    for n, beam in ((1, 1), (60, 8), (7, 3), (120, 5), (250, 8)):
        small.translate_batch(_sources(n, seed=n), beam_size=beam)
        kept.append(_engine.call_buffers())
    assert max(kept) <= 32 << 20   # RS_BLOCK_KEEP_TOTAL
    assert max(kept) > 16 << 20    # (the last call's buffers would have gone beyond it)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="minor faults: Linux")
def test_a_repeated_call_does_not_page_fault_its_buffers_again(small):
    """The batch of 30 that took ~700 fresh pages per call (glibc gave its buffers back to
    the OS at every free)."""
    import resource
    sources = _sources(30, seed=8)
    for _ in range(2):
        small.translate_batch(sources, search="opennmt", beam_size=5)
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    for _ in range(5):
        small.translate_batch(sources, search="opennmt", beam_size=5)
    per_call = (resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before) / 5
    assert per_call < 100, per_call
