"""The 15 Hz deadline clock of the simulator process, and what it measures about itself.

Deadlines sit on a fixed grid (``anchor + n * period``): a late tick does not push the next one
back, so lateness never accumulates into drift. A process that falls far behind (e.g. suspended)
re-anchors instead of replaying a burst of ticks.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import numpy as np

MAX_SAMPLES = 100_000  # about 2 hours of ticks at 15 Hz


class TickClock:
    def __init__(self, period: float, *, clock: Callable[[], float] = time.perf_counter, max_behind: float = 1.0):
        self.period = period
        self.clock = clock
        self.max_behind = max_behind
        self.anchor = clock()
        self.n = 0
        self.reanchors = 0
        self.lateness_ms: deque[float] = deque(maxlen=MAX_SAMPLES)
        self.work_ms: deque[float] = deque(maxlen=MAX_SAMPLES)

    def start(self) -> None:
        """The first deadline is now."""
        self.anchor = self.clock()
        self.n = 0

    def deadline(self) -> float:
        return self.anchor + self.n * self.period

    def remaining(self) -> float:
        return self.deadline() - self.clock()

    def mark(self) -> float:
        """A tick starts now: record how late it is against its deadline; returns now."""
        now = self.clock()
        late = now - self.deadline()
        self.lateness_ms.append(max(late, 0.0) * 1000.0)
        self.n += 1
        if late > self.max_behind:
            self.anchor, self.n = now + self.period, 0
            self.reanchors += 1
        return now

    def done(self, started: float) -> None:
        self.work_ms.append((self.clock() - started) * 1000.0)

    def stats(self, reset: bool = False) -> dict[str, float]:
        late = np.fromiter(self.lateness_ms, dtype=np.float64)
        work = np.fromiter(self.work_ms, dtype=np.float64)
        out = {
            "ticks": float(len(late)),
            "tick_jitter_p50_ms": float(np.percentile(late, 50)) if len(late) else 0.0,
            "tick_jitter_p99_ms": float(np.percentile(late, 99)) if len(late) else 0.0,
            "tick_jitter_max_ms": float(late.max()) if len(late) else 0.0,
            "tick_work_p99_ms": float(np.percentile(work, 99)) if len(work) else 0.0,
            "reanchors": float(self.reanchors),
        }
        if reset:
            self.lateness_ms.clear()
            self.work_ms.clear()
            self.reanchors = 0
        return out
