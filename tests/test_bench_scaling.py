"""`rnnsearch bench --scaling` (rnnsearch.bench.scaling) end to end at a tiny size, its
analysis on known numbers, and the benchmarks' timing loop (rnnsearch.bench.timing).
Nothing here is timed for speed."""
import numpy as np
import pytest

from rnnsearch.bench.scaling import analyse
from rnnsearch.bench.timing import Case, time_case
from rnnsearch.cli import main as cli_main


def test_tiny_scaling_run(capsys):
    argv = ["--quick", "--source-lengths", "4,9", "--target-lengths", "2,3,5"]
    assert cli_main(["bench", "--scaling", *argv]) == 0
    printed = capsys.readouterr().out
    assert "`rnnsearch bench --scaling " + " ".join(argv) + "`" in printed
    rows = [line.split(" | ") for line in printed.splitlines() if line[:3] in ("| 4", "| 9")]
    assert [row[0] for row in rows] == ["| 4", "| 9"]
    for row in rows:
        times = [float(cell) for cell in row[1:4]]
        assert all(t > 0 for t in times)
        assert len(row[-1].split(" / ")) == 2   # per-step cost over the two T intervals
    assert "µs × source tokens" in printed and "4→9" in printed


def test_scaling_analysis_recovers_a_known_cost():
    """time(S, T) = fixed(S) + T (0.5 + 0.01 S) ms: slope, intercept, line and increments."""
    sources, targets = [10, 50, 200, 800], [10, 40, 160]
    results = {(S, T): (2 + 0.1 * S + T * (0.5 + 0.01 * S),) * 2
               for S in sources for T in targets}
    wall = analyse(results, sources, targets, 0)
    for S in sources:
        per = wall["per_source"][S]
        assert per["step_ms"] == pytest.approx(0.5 + 0.01 * S)
        assert per["fixed_ms"] == pytest.approx(2 + 0.1 * S)
        assert per["interval_step_ms"] == pytest.approx([0.5 + 0.01 * S] * 2)
    assert wall["step_intercept_ms"] == pytest.approx(0.5)
    assert wall["step_per_source_token_ms"] == pytest.approx(0.01)
    assert wall["increments_ms_per_token"] == pytest.approx([0.01] * 3)
    # a quadratic term shows as growing increments
    quadratic = {(S, T): (T * (0.5 + 1e-5 * S * S),) * 2 for S in sources for T in targets}
    growing = analyse(quadratic, sources, targets, 1)["increments_ms_per_token"]
    assert growing[0] < growing[1] < growing[2]


class Recorder:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def translate(self, sources, beam, length, threads):
        self.log.append((self.name, len(sources), beam))
        return [[0] * length for _ in sources]


def test_timing_warms_every_shape_then_rotates_the_engines():
    log = []
    engines = [Recorder(name, log) for name in "abc"]
    sentences = np.zeros((4, 3), np.int64)
    times = time_case(engines, Case(2, 5, 1), sentences, 6, repeat=3)
    warm, timed = log[:6], log[6:]
    assert warm == [(name, 2, 5) for name in "abc" for _ in range(2)]   # the whole workload
    firsts = [timed[i][0] for i in range(0, len(timed), 6)]
    assert firsts == ["a", "b", "c"]                  # each repetition starts elsewhere
    for name in "abc":
        assert len(times[name].wall) == len(times[name].cpu) == 3
        assert all(t >= 0 for t in times[name].wall + times[name].cpu)
