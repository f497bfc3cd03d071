"""Corpus translation on Ray Data, on a local Ray instance the test starts: output
identical to the Translator's and in input order, files written as Ray Data writes them,
the command line, and an actor killed mid-run whose batches are retried."""
import glob
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is the [ray] extra (in [test]); not installed")
import ray.data  # noqa: E402

from rnnsearch import Translator  # noqa: E402
from rnnsearch.distributed import translate_dataset, translate_files  # noqa: E402

LETTERS = list("abcdefghijklmnopqrstuvwxyz")


@pytest.fixture(scope="module")
def local_ray():
    if ray.is_initialized():   # another test's instance: this one wants exactly 2 CPUs
        ray.shutdown()
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level="warning")
    except Exception as error:   # sandboxes without shared memory, ports, ...
        pytest.skip(f"Ray cannot start on this machine: {type(error).__name__}: {error}")
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def offline():
    return Translator()


def _lines(n, seed=0):
    rng = np.random.default_rng(seed)
    lines = [" ".join("".join(rng.choice(LETTERS, size=rng.integers(1, 9)))
                      for _ in range(rng.integers(1, 3))) for _ in range(n)]
    lines[3] = ""            # empty lines stay, as empty translations
    return lines


def _same_as_offline(rows, lines, offline, beam_size) -> None:
    assert [row["text"] for row in rows] == lines
    assert [row["translation"] for row in rows] == offline.translate(lines, beam_size=beam_size)


def _corpus_file(tmp_path, lines):
    """The lines written as a text file, and an output directory beside it."""
    source = tmp_path / "corpus.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return source, tmp_path / "out"


def _written_rows(directory) -> list[dict]:
    """The JSON lines Ray Data wrote, its files in name order (their block order)."""
    return [json.loads(line) for path in sorted(glob.glob(str(directory / "*.json")))
            for line in open(path, encoding="utf-8")]


def test_translate_dataset_is_identical_and_in_order(local_ray, offline):
    lines = _lines(600)
    ds = ray.data.from_items([{"text": line, "id": i} for i, line in enumerate(lines)])
    # 3 calls of 37 rows per Ray task: tasks and calls cut the rows in different places
    rows = translate_dataset(ds, actors=2, batch_size=37, task_batches=3,
                             beam_size=2).take_all()
    assert [row["id"] for row in rows] == list(range(len(lines)))
    _same_as_offline(rows, lines, offline, beam_size=2)


def test_translate_files_writes_json_lines_in_order(local_ray, offline, tmp_path):
    lines = _lines(300, seed=1)
    source, out = _corpus_file(tmp_path, lines)
    translate_files(str(source), str(out), actors=2, batch_size=50, beam_size=2)
    _same_as_offline(_written_rows(out), lines, offline, beam_size=2)


def test_command_line_joins_the_running_cluster(local_ray, offline, tmp_path):
    lines = _lines(60, seed=2)
    source, out = _corpus_file(tmp_path, lines)
    done = subprocess.run([sys.executable, "-m", "rnnsearch", "translate", "--ray", "auto",
                           "-i", str(source), "-o", str(out), "--beam-size", "1",
                           "--ray-actors", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    _same_as_offline(_written_rows(out), lines, offline, beam_size=1)
    refused = subprocess.run([sys.executable, "-m", "rnnsearch", "translate", "--ray", "auto"],
                             capture_output=True, text=True, timeout=60, input="a\n")
    assert refused.returncode == 1 and "-i INPUT" in refused.stderr


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == pid:
                found.append(int(entry))
    return found


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _our_translator_actors() -> list[int]:
    """PIDs of the TranslateBatch actors of the Ray instance this test process started
    (workers are children of its raylet, a child of this process)."""
    raylets = [p for p in _children(os.getpid()) if "raylet" in _command(p)]
    return [p for r in raylets for p in _children(r) if "TranslateBatch" in _command(p)]


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the actor's process in /proc")
def test_an_actor_killed_mid_run_is_restarted_and_its_batches_retried(local_ray, offline):
    lines = _lines(1500, seed=3)
    ds = translate_dataset(ray.data.from_items([{"text": line} for line in lines]), actors=2,
                           batch_size=25, task_batches=1, beam_size=2, max_retries=2)
    rows, killed = [], None
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        if killed is None:   # the first batch is out, some 59 are still to come
            actors = _our_translator_actors()
            assert actors, "no TranslateBatch actor found under this test's raylet"
            killed = actors[0]
            os.kill(killed, signal.SIGKILL)
        rows += [dict(zip(batch, values)) for values in zip(*batch.values())]
    assert killed is not None
    _same_as_offline(rows, lines, offline, beam_size=2)


def test_bad_arguments():
    ds = None   # checked before Ray is touched
    with pytest.raises(ValueError, match="actors"):
        translate_dataset(ds, actors=0)
    with pytest.raises(ValueError, match="task_batches"):
        translate_dataset(ds, task_batches=0)
    with pytest.raises(ValueError, match="max_retries"):
        translate_dataset(ds, max_retries=-1)
