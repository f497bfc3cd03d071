"""intra_threads with fewer sentences than threads: each decoding step's products are split
by output rows over a persistent pool of worker threads (engine/rs_workers.c, rs_split.c).
The reference is the same model decoded on one thread (itself checked against the
frameworks elsewhere): tokens, scores and attention must be the same bits, greedy and beam,
float32 and int8, batch 1 and batch N, on LSTM/GRU, Bahdanau/Luong and stateful-attention
models; several Python threads sharing one Translator get the serial results; the pool's
threads end with the Translator."""
import gc
import os
import sys
import threading

import numpy as np
import pytest

import rnnsearch
from rnnsearch import _engine
from rnnsearch.random_model import write_random_model

V_SOURCE, V_TARGET = 60, 700


def _config(decoder: str, cell: str, attention: dict, layers: int = 1, **decoder_options):
    dec = {"type": decoder, "embedding_size": 24, "cell": cell, "hidden_size": 48,
           "num_layers": layers, **decoder_options}
    return {"format": "rnnsearch-model", "format_version": 1,
            "encoder": {"embedding_size": 16, "cell": cell, "hidden_size": 32,
                        "num_layers": layers, "bidirectional": True},
            "bridge": {"type": "dense"},
            "attention": attention,
            "decoder": dec}


MODELS = {
    # OpenNMT/GNMT-like: LSTM, Luong general attention with input feeding, two layers
    "luong-lstm": _config("luong", "lstm", {"score": "general"}, layers=2, input_feeding=True),
    # RNNsearch: GRU, additive attention, maxout deep output
    "bahdanau-gru": _config("bahdanau", "gru", {"score": "additive", "size": 40},
                            readout="maxout", readout_size=64),
    # ESPnet-style location-aware attention: state carried from step to step
    "location-lstm": _config("bahdanau", "lstm", {
        "type": "location", "score": "additive", "size": 40, "scaling": 2.0,
        "location": {"channels": 4, "kernel_size": 5}}),
    # Sockeye-style coverage with learned GRU updates, Luong decoder
    "coverage-gru": _config("luong", "gru", {
        "type": "coverage", "score": "additive", "size": 40,
        "coverage": {"update": "gru", "size": 3}}, input_feeding=True),
}


@pytest.fixture(autouse=True)
def split_everything():
    """Split every product of at least two 16-output panels, however small (the default
    minimum would leave most products of these small models on one thread)."""
    _, previous, _ = _engine.intra_split(1)
    yield
    _engine.intra_split(previous)


@pytest.fixture(scope="module", params=sorted(MODELS))
def model_path(request, tmp_path_factory):
    path = str(tmp_path_factory.mktemp(request.param))
    write_random_model(path, MODELS[request.param], V_SOURCE, V_TARGET, seed=7)
    return path


def _sources(count, seed=0):
    rng = np.random.default_rng(seed)
    return [[f"s{i}" for i in rng.integers(0, V_SOURCE - 4, rng.integers(1, 30))]
            for _ in range(count)]


def _outcome(results):
    """Everything a result carries, as plain values compared exactly."""
    return [(r.hypotheses, r.scores, [a.tobytes() for a in r.attention]) for r in results]


def _assert_split_ran(before):
    assert _engine.intra_split()[0] > before, "no product was split over threads"


@pytest.mark.parametrize("compute_type", ["float32", "int8", "bfloat16"])
def test_threads_give_the_one_thread_bits(model_path, compute_type):
    one = rnnsearch.Translator(model_path, compute_type=compute_type)
    many = {t: rnnsearch.Translator(model_path, compute_type=compute_type, intra_threads=t)
            for t in (2, 3)}
    sources = _sources(5, seed=len(model_path))
    on_workers = _engine.intra_split()[2]
    for options in (dict(beam_size=1), dict(beam_size=5, num_hypotheses=3,
                                            coverage_penalty=0.2, length_penalty=0.6)):
        options.update(max_decoding_length=25, return_scores=True, return_attention=True)
        expected_batch = _outcome(one.translate_batch(sources, **options))
        expected_pair = _outcome(one.translate_batch(sources[:2], **options))
        for threads, translator in many.items():
            before = _engine.intra_split()[0]
            for k, source in enumerate(sources):   # batch 1: split products
                got = _outcome(translator.translate_batch([source], **options))
                assert got == _outcome(one.translate_batch([source], **options)), \
                    f"{threads} threads, sentence {k}, {options['beam_size']=}"
            _assert_split_ran(before)
            # two sentences: split products with 3 threads, two groups with 2
            assert _outcome(translator.translate_batch(sources[:2], **options)) == expected_pair
            # more sentences than threads: groups of sentences
            assert _outcome(translator.translate_batch(sources, **options)) == expected_batch
    assert _engine.intra_split()[2] > on_workers, "the workers never ran a part"


def test_a_bidirectional_encoder_runs_its_directions_side_by_side(tmp_path):
    """With two threads and fewer sentences than threads, a bidirectional layer runs its
    two directions at once, one per core, each product whole (rs_encoder.c): the same bits
    as one thread. No product is worth splitting here, so a part run by a worker can only
    be a direction."""
    path = str(tmp_path / "model")
    write_random_model(path, MODELS["luong-lstm"], V_SOURCE, V_TARGET, seed=3)
    _engine.intra_split(1 << 30)
    one = rnnsearch.Translator(path)
    two = rnnsearch.Translator(path, intra_threads=2)
    split_before, _, on_workers = _engine.intra_split()
    options = dict(beam_size=5, num_hypotheses=2, max_decoding_length=20, return_scores=True,
                   return_attention=True)
    for source in _sources(6, seed=11):
        assert _outcome(two.translate_batch([source], **options)) == \
            _outcome(one.translate_batch([source], **options))
    assert _engine.intra_split()[0] == split_before, "a product was split"
    assert _engine.intra_split()[2] > on_workers, "no direction ran on a worker"


def test_callback_prefix_and_suppress_with_split_products(model_path):
    """The options that reach into the search (token callback, target prefix, suppressed
    tokens) run on the calling thread, between split products."""
    one = rnnsearch.Translator(model_path)
    two = rnnsearch.Translator(model_path, intra_threads=2)
    source = _sources(1, seed=3)
    prefix = [["t5", "t9"]]
    options = dict(beam_size=1, max_decoding_length=20, return_scores=True,
                   target_prefix=prefix, suppress_tokens=["t11"])
    seen = {1: [], 2: []}
    for threads, translator in ((1, one), (2, two)):
        out = translator.translate_batch(
            source, callback=lambda step: seen[threads].append((step.token, step.log_prob)), **options)
        seen[threads].append(_outcome(out))
    assert seen[1] == seen[2]


def test_threads_sharing_one_translator_get_the_serial_results(tmp_path):
    path = str(tmp_path / "m")
    write_random_model(path, MODELS["luong-lstm"], V_SOURCE, V_TARGET, seed=11)
    serial = rnnsearch.Translator(path)
    shared = rnnsearch.Translator(path, intra_threads=2)
    sources = _sources(8, seed=5)
    options = dict(beam_size=3, max_decoding_length=20, return_scores=True,
                   return_attention=True)
    expected = [_outcome(serial.translate_batch([s], **options)) for s in sources]
    got, errors = {}, []

    def work(worker):
        try:
            for round_ in range(3):
                for k in range(worker, len(sources), 2):
                    out = _outcome(shared.translate_batch([sources[k]], **options))
                    got.setdefault(k, []).append(out)
        except Exception as error:   # reported below, a thread's exception is lost
            errors.append(error)

    before = _engine.intra_split()[0]
    threads = [threading.Thread(target=work, args=(w % 2,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    _assert_split_ran(before)
    for k, outs in got.items():
        assert len(outs) == 6 and all(out == expected[k] for out in outs), f"sentence {k}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/task")
def test_the_pool_threads_end_with_the_translator(tmp_path):
    path = str(tmp_path / "m")
    write_random_model(path, MODELS["bahdanau-gru"], V_SOURCE, V_TARGET, seed=3)

    def threads_now():
        return len(os.listdir("/proc/self/task"))

    gc.collect()
    before = threads_now()
    translator = rnnsearch.Translator(path, intra_threads=3)
    options = dict(beam_size=2, max_decoding_length=8)
    translator.translate_batch(_sources(4, seed=1), **options)   # groups: threads per call
    assert threads_now() == before
    translator.translate_batch(_sources(1, seed=1), **options)   # split products: the pool
    assert threads_now() == before + 2
    translator.translate_batch(_sources(1, seed=2), **options)   # is reused
    assert threads_now() == before + 2
    del translator
    gc.collect()
    assert threads_now() == before


def test_the_default_minimum_still_gives_the_same_bits(tmp_path):
    """At the default minimum only the larger products split (here the output layer)."""
    _engine.intra_split(64 * 1024)
    path = str(tmp_path / "m")
    write_random_model(path, MODELS["luong-lstm"], V_SOURCE, V_TARGET, seed=2)
    one = rnnsearch.Translator(path)
    two = rnnsearch.Translator(path, intra_threads=2)
    options = dict(beam_size=4, max_decoding_length=20, return_scores=True,
                   return_attention=True)
    before = _engine.intra_split()[0]
    for source in _sources(3, seed=9):
        assert _outcome(two.translate_batch([source], **options)) == \
            _outcome(one.translate_batch([source], **options))
    _assert_split_ran(before)
