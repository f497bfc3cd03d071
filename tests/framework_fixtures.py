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
