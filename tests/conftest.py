import pytest

from rnnsearch.random_model import write_random_model


def pytest_configure(config):
    config.addinivalue_line("markers", "fuzz: a long fuzzing campaign (tests/test_fuzz.py); "
                                       "run only when asked for: pytest -m fuzz")


def pytest_collection_modifyitems(config, items):
    """Fuzzing campaigns take minutes each: skipped unless -m names them."""
    if "fuzz" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="a fuzzing campaign: run with pytest -m fuzz")
    for item in items:
        if "fuzz" in item.keywords:
            item.add_marker(skip)

SMALL_CONFIG = {
    "format": "rnnsearch-model", "format_version": 1,
    "encoder": {"embedding_size": 8, "cell": "gru", "hidden_size": 16, "bidirectional": True},
    "bridge": {"type": "dense"},
    "attention": {"score": "additive", "size": 12},
    "decoder": {"type": "bahdanau", "embedding_size": 8, "cell": "lstm", "hidden_size": 16,
                "readout": "maxout", "readout_size": 20},
}


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory):
    """A small random Bahdanau model written with NumPy only."""
    path = str(tmp_path_factory.mktemp("small-model"))
    write_random_model(path, SMALL_CONFIG, 30, 25, seed=1)
    return path


@pytest.fixture(scope="session")
def small_translator(small_model_dir):
    """A Translator on small_model_dir, shared by the tests that only read it."""
    from rnnsearch import Translator
    return Translator(small_model_dir)
