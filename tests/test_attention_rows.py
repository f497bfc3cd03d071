"""The attention kernels that serve all beam rows of a sentence at once (a sentence's memory
is read once per step: contexts summed for up to six rows from the values in 16-column panels,
relu additive scores per key for every row): the engine against the PyTorch reference
(rnnsearch.reference) — tokens identical, scores within 1e-4, attention within 1e-5 — and a
batch bit for bit equal to its sentences one by one, with a memory width that leaves a
partial panel (90 = 5 x 16 + 10), and beams that split into groups (8 = 6 + 2).
(tests/native/kernel_check.c checks the context kernel bit for bit on many more shapes.)"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnsearch  # noqa: E402
from rnnsearch.random_model import vocabularies  # noqa: E402
from rnnsearch.reference import export_model_dir, random_model  # noqa: E402
from test_features import _check as check_against_reference  # noqa: E402

V_TARGET, F = 20, 90   # test_features' target vocabulary; regions of 90 values


def _config(attention):
    return {"format": "rnnsearch-model", "format_version": 1,
            "source": {"kind": "features", "feature_size": F, "vocabulary": None},
            "encoder": {"num_layers": 0},
            "bridge": {"type": "mean", "activation": "identity", "lstm_cell": "bridged"},
            "attention": {"score": "additive", "size": 9, **attention},
            "decoder": {"type": "bahdanau", "embedding_size": 6, "cell": "lstm",
                        "hidden_size": 10, "readout_inputs": ["state", "context"]}}


CASES = {
    # Show, Attend and Tell: relu scores, a gate per context dimension
    "relu-gate": {"score_activation": "relu", "gate": True, "gate_per_dimension": True},
    "tanh": {},
    "location": {"type": "location", "location": {"channels": 3, "kernel_size": 5}},
}


@pytest.fixture(scope="module", params=sorted(CASES))
def pair(request, tmp_path_factory):
    path = str(tmp_path_factory.mktemp(request.param))
    model = random_model(_config(CASES[request.param]), None, V_TARGET, seed=3)
    export_model_dir(model, path, None, vocabularies(4, V_TARGET)[1])
    return model, rnnsearch.Translator(path)


def _regions(count=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, F)).astype(np.float32) for n in (17, 30, 9)[:count]]


OPTIONS = dict(max_decoding_length=20, return_scores=True, return_attention=True)


@pytest.mark.parametrize("beam_size", [5, 8])
def test_rows_of_a_sentence_match_the_reference(pair, beam_size):
    sources = _regions()
    results = pair[1].translate_features(sources, beam_size=beam_size, num_hypotheses=beam_size,
                                         **OPTIONS)
    check_against_reference(pair[0], results, sources, beam_size)


def test_batch_equals_one_by_one_bit_for_bit(pair):
    sources, options = _regions(), dict(OPTIONS, beam_size=8, num_hypotheses=8)
    batch = pair[1].translate_features(sources, **options)
    for frames, together in zip(sources, batch):
        alone = pair[1].translate_features([frames], **options)[0]
        assert alone.hypotheses == together.hypotheses and alone.scores == together.scores
        for x, y in zip(alone.attention, together.attention):
            assert np.array_equal(x, y)
