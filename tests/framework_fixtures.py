"""Committed outputs of frameworks too heavy for CI (tests/fixtures/FRAMEWORK/NAME/), made
by tools/make_opennmt_fixtures.py and tools/make_joeynmt_fixtures.py."""
import glob
import json
import os

ROOT = os.path.join(os.path.dirname(__file__), "fixtures")


def fixture_dir(framework: str) -> str:
    return os.path.join(ROOT, framework)


def fixture_names(framework: str) -> list[str]:
    """The fixtures that carry the framework's expected outputs."""
    pattern = os.path.join(fixture_dir(framework), "*", "expected.json")
    return sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(pattern))


def load_expected(framework: str, name: str) -> dict:
    with open(os.path.join(fixture_dir(framework), name, "expected.json"),
              encoding="utf-8") as f:
        return json.load(f)


def assert_decodes_as_fixture(translator, expected: dict, arrays, mode: str, beam: int,
                              nbest: int, max_length: int = 30) -> None:
    """The engine's output on expected["sources"] equals a toolkit's recorded decoding
    (tests/fixtures/attention): tokens identical, scores within 1e-4, attention within
    1e-5 (arrays["attention/MODE/SENTENCE/HYPOTHESIS"])."""
    import numpy as np
    import pytest
    got = translator._engine.translate(expected["sources"], beam_size=beam,
                                       num_hypotheses=nbest, max_length=max_length,
                                       return_attention=True)
    for i, (hyps, want) in enumerate(zip(got, expected[mode])):
        assert [h[0] for h in hyps] == [w[0] for w in want], f"sentence {i}"
        for h, ((_, score, attention), (_, want_score)) in enumerate(zip(hyps, want)):
            assert score == pytest.approx(want_score, rel=1e-4, abs=1e-4)
            np.testing.assert_allclose(attention, arrays[f"attention/{mode}/{i}/{h}"],
                                       atol=1e-5)
