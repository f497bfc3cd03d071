"""How the benchmarks time engines: every shape warmed up first, engines in a rotated order
in every repetition (so that neither machine drift nor cache state favours the one that
always runs first), wall time and this process's CPU time (all its threads: an engine that
spawns hidden threads shows CPU time above its wall time)."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Case:
    batch: int
    beam: int
    threads: int

    @property
    def label(self) -> str:
        return f"batch {self.batch}, " + ("greedy" if self.beam == 1 else f"beam {self.beam}")


@dataclass
class Timing:
    """ms per sentence of every repetition."""
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def timed(run) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def rotated(items: list, shift: int) -> list:
    shift %= len(items)
    return items[shift:] + items[:shift]


def time_case(engines, case: Case, sentences: np.ndarray, length: int, repeat: int
              ) -> dict[str, Timing]:
    """Every engine translates `sentences` in calls of `case.batch`, `repeat` times. Before
    timing, each runs the whole workload once: every shape it will see (batch 1 or the full
    batch, beam rows, this source length) is allocated, packed or compiled outside the
    clock."""
    calls = [sentences[i:i + case.batch] for i in range(0, len(sentences), case.batch)]

    def run(engine):
        for call in calls:
            engine.translate(call, case.beam, length, case.threads)

    for engine in engines:
        run(engine)
    times = {engine.name: Timing() for engine in engines}
    for repetition in range(repeat):
        for engine in rotated(list(engines), repetition):
            wall, cpu = timed(lambda: run(engine))
            times[engine.name].wall.append(1000.0 * wall / len(sentences))
            times[engine.name].cpu.append(1000.0 * cpu / len(sentences))
    return times
