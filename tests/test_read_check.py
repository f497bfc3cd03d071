"""Native readers of converter inputs (libhdf5 through h5py, torch.load) run first in a
child process under a time and a memory limit (convert/common/read_check.py, issue 13):
a file that hangs libhdf5, makes torch.load allocate gigabytes, or crashes the reader
stops conversion with a ModelError, and the converter's process is never touched.

The two committed inputs are real fuzzing findings (tools/fuzz/regressions): a Keras .h5
whose model_config attribute loops forever inside libhdf5, and an OpenNMT-py checkpoint
that took ~10 GB inside torch.load before it was refused."""
import argparse
import os
import resource
import signal
import time

import pytest

import rnnsearch
from rnnsearch.convert.common import read_check
from rnnsearch.convert.common.read_check import checked_in_child

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGRESSIONS = os.path.join(ROOT, "tools", "fuzz", "regressions")
BASE = os.path.join(ROOT, "tools", "fuzz", "base")
HANGS_LIBHDF5 = os.path.join(REGRESSIONS, "keras_h5", "hang-model-config-global-heap")
HUGE_STORAGE = os.path.join(REGRESSIONS, "opennmt_checkpoint", "memory-huge-storage")

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the read check forks")


def _keras(path, output):
    from rnnsearch.convert.keras import convert_keras
    folder = os.path.join(BASE, "keras")
    return convert_keras(str(path), str(output), os.path.join(folder, "source.json"),
                         os.path.join(folder, "target.json"), bos="<start>", eos="<end>")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_hdf5_file_that_hangs_libhdf5_is_refused_in_time(tmp_path, monkeypatch):
    pytest.importorskip("h5py")
    monkeypatch.setenv("RNNSEARCH_READ_TIMEOUT", "4")
    start = time.monotonic()
    with pytest.raises(rnnsearch.ModelError, match="did not finish within 4 s"):
        _keras(HANGS_LIBHDF5, tmp_path / "out")
    assert time.monotonic() - start < 30
    assert not (tmp_path / "out").exists()


def test_checkpoint_that_blows_up_torch_load_is_refused_within_the_memory_limit(tmp_path):
    pytest.importorskip("torch")
    from rnnsearch.convert.opennmt import convert
    before = _peak_rss_mb()
    with pytest.raises(rnnsearch.ModelError, match="needs more than .* MiB|died on it"):
        convert(argparse.Namespace(checkpoint=HUGE_STORAGE, output=str(tmp_path / "out")))
    # the blow-up happened (and was stopped) in the child, not here
    assert _peak_rss_mb() - before < 1024


@checked_in_child("test file")
def _crashing_reader(path):
    os.kill(os.getpid(), signal.SIGSEGV)


@checked_in_child("test file")
def _greedy_reader(path, megabytes):
    return bytearray(megabytes * 2**20)


@checked_in_child("test file")
def _failing_reader(path):
    raise KeyError("from the reader itself")


_calls = []


@checked_in_child("test file")
def _outer_reader(path):
    _calls.append(os.getpid())
    return _inner_reader(path)


@checked_in_child("test file")
def _inner_reader(path):
    _calls.append(os.getpid())
    return "read"


def test_a_reader_that_crashes_is_a_model_error(tmp_path):
    with pytest.raises(rnnsearch.ModelError, match="died on it .*SIGSEGV"):
        _crashing_reader(str(tmp_path / "x"))


def test_memory_past_the_limit_is_a_model_error_and_within_it_works(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNSEARCH_READ_MEMORY_MB", "256")
    with pytest.raises(rnnsearch.ModelError, match="needs more than 256 MiB"):
        _greedy_reader(str(tmp_path / "x"), 1024)
    assert len(_greedy_reader(str(tmp_path / "x"), 16)) == 16 * 2**20


def test_an_ordinary_exception_comes_from_the_real_read(tmp_path):
    """The child finished, so the reader runs here and raises its own exception."""
    with pytest.raises(KeyError, match="from the reader itself"):
        _failing_reader(str(tmp_path / "x"))


def test_nested_readers_are_checked_once_and_read_here(tmp_path, monkeypatch):
    forks = []
    real_fork = os.fork

    def counting_fork():
        forks.append(1)
        return real_fork()
    monkeypatch.setattr(read_check.os, "fork", counting_fork)
    _calls.clear()
    assert _outer_reader(str(tmp_path / "x")) == "read"
    assert len(forks) == 1
    assert _calls == [os.getpid(), os.getpid()]   # the child's calls are not seen here


def test_the_check_can_be_switched_off_for_trusted_files(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNSEARCH_READ_CHECK", "0")
    monkeypatch.setattr(read_check.os, "fork", lambda: pytest.fail("forked"))
    assert _inner_reader(str(tmp_path / "x")) == "read"


@pytest.mark.parametrize("name,value", [("RNNSEARCH_READ_TIMEOUT", "0"),
                                        ("RNNSEARCH_READ_TIMEOUT", "soon"),
                                        ("RNNSEARCH_READ_MEMORY_MB", "-5"),
                                        ("RNNSEARCH_READ_MEMORY_MB", "inf"),
                                        ("RNNSEARCH_READ_MEMORY_MB", "nan")])
def test_bad_limits_are_value_errors_naming_the_variable(tmp_path, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        _inner_reader(str(tmp_path / "x"))


def test_limits_grow_with_the_file(tmp_path):
    small, big = tmp_path / "small", tmp_path / "big"
    small.write_bytes(b"x")
    with open(big, "wb") as f:
        f.truncate(400 * 2**20)
    seconds_small, memory_small = read_check.limits_for(str(small))
    seconds_big, memory_big = read_check.limits_for(str(big))
    assert seconds_big == pytest.approx(seconds_small + 20, abs=0.1)
    assert memory_big - memory_small == pytest.approx(1200 * 2**20, rel=0.01)


def test_good_files_convert_as_before(tmp_path):
    pytest.importorskip("h5py")
    _keras(os.path.join(BASE, "keras", "model.h5"), tmp_path / "out")
    assert rnnsearch.Translator(str(tmp_path / "out")).translate_batch([["a"]])
