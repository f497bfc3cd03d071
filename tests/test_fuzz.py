"""Fuzzing every loader and converter input parser (tools/fuzz/targets.py), each in a
child process, so that a crash fails the test instead of killing the run.

By default (CI) each target gets a short smoke run: its committed seeds (real files made
by the frameworks) and regression inputs, their structured corruptions (cut short, blocks
zeroed, bytes flipped) and a few dozen random mutants, with a fixed seed. The long
campaigns are marked `fuzz` and deselected by default:

    RNNSEARCH_FUZZ_SECONDS=600 python -m pytest -m fuzz     # atheris if installed
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(ROOT, "tools", "fuzz_run.py")
sys.path.insert(0, os.path.join(ROOT, "tools"))

from fuzz.targets import TARGETS  # noqa: E402

# targets whose inputs need an optional framework to read at all
NEEDS = {"joeynmt_config": ("torch", "yaml"), "joeynmt_checkpoint": ("torch", "yaml"),
         "opennmt_checkpoint": ("torch",), "torch_checkpoint": ("torch",),
         "torch_json": ("torch",), "onnx": ("onnx",), "keras_archive": ("h5py",),
         "keras_h5": ("h5py",), "keras_vocab": ("h5py",), "marian_npz": ("yaml",),
         "marian_yml": ("yaml",)}


def _fuzz(target: str, *options: str, timeout: float) -> subprocess.CompletedProcess:
    for module in NEEDS.get(target, ()):
        pytest.importorskip(module)
    return subprocess.run([sys.executable, DRIVER, "run", target, *options],
                          capture_output=True, text=True, timeout=timeout)


def _verdict(done: subprocess.CompletedProcess) -> str:
    if done.returncode < 0:
        return f"the process died of signal {-done.returncode}:\n{done.stderr[-4000:]}"
    return done.stderr[-4000:]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_smoke(target):
    done = _fuzz(target, "--engine", "mutate", "--iterations", "30", "--seed", "0",
                 "--timeout", "60", timeout=900)
    assert done.returncode == 0, _verdict(done)
    assert "done:" in done.stderr and "'ok'" in done.stderr   # the seeds themselves load


@pytest.mark.fuzz
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_campaign(target):
    seconds = float(os.environ.get("RNNSEARCH_FUZZ_SECONDS", "60"))
    done = _fuzz(target, "--seconds", str(seconds), timeout=seconds * 2 + 600)
    assert done.returncode == 0, _verdict(done)
