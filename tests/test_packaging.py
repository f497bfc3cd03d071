"""What gets published: the sdist holds everything a build and the tests need (and no
generated C), and the metadata's extras never pull an unpinned torch. The full chain (a
wheel built from the sdist, repaired by auditwheel, installed in fresh environments and
translating) is tools/check_dist.py, which .ci/run runs."""
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rnnsearch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
check_dist = pytest.importorskip("check_dist")


def requirements() -> list[tuple[str, str | None]]:
    """(requirement, extra or None) of the installed rnnsearch."""
    out = []
    for line in importlib.metadata.requires("rnnsearch") or []:
        requirement, _, marker = line.partition(";")
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        out.append((requirement.strip(), extra.group(1) if extra else None))
    return out


def test_torch_is_pinned_in_every_extra_and_absent_from_the_core():
    torch = [(r, extra) for r, extra in requirements() if re.match(r"torch\b", r)]
    assert torch, "no extra provides torch"
    for requirement, extra in torch:
        assert extra is not None, "torch must not be a core dependency"
        assert requirement.replace(" ", "") == "torch==2.13.0", (extra, requirement)


def test_extras_and_metadata():
    by_extra = {}
    for requirement, extra in requirements():
        by_extra.setdefault(extra, []).append(requirement)
    assert {"torch", "onnx", "keras", "all", "test"} <= set(by_extra)
    assert sorted(by_extra[None]) == ["numpy>=1.24", "tqdm>=4.60"]
    assert any(r.startswith("safetensors") for r in by_extra["torch"])   # OpenNMT-py 3.x
    assert any(r.startswith("pyyaml") for r in by_extra["torch"])        # JoeyNMT configs
    assert any(r.startswith("h5py") for r in by_extra["keras"])
    assert any(r.startswith("onnx") for r in by_extra["onnx"])
    (everything,) = by_extra["all"]
    assert set(re.search(r"\[(.*)\]", everything).group(1).split(",")) == {"torch", "onnx", "keras",
                                                                       "sentencepiece", "plot"}
    meta = importlib.metadata.metadata("rnnsearch")
    assert meta["Version"] == rnnsearch.__version__
    assert meta["License-Expression"] == "MIT"
    assert meta["Requires-Python"] == ">=3.10"
    assert any(c.startswith("Programming Language :: Python :: 3.1") for c in meta.get_all("Classifier"))
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


@pytest.mark.skipif(importlib.util.find_spec("build") is None or
                    importlib.util.find_spec("Cython") is None,
                    reason="needs build and Cython (the test extra has them)")
def test_sdist_holds_the_sources_headers_model_and_test_fixtures(tmp_path):
    source = check_dist.clean_copy(ROOT, tmp_path / "source")
    done = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation",
                           "--outdir", str(tmp_path / "dist"), str(source)],
                          capture_output=True, text=True, env=dict(os.environ, PIP_NO_INPUT="1"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    assert check_dist.sdist_problems(sdist, ROOT) == []
