"""Ranking methods (SPEC "Evaluation and race rules").

A racer's laps are grouped by run (a LIVE run, or a classic submission's evaluation); laps are
consecutive only inside one run, with consecutive lap numbers, and an invalid lap (or a missing
lap number) breaks the chain. A run *qualifies* when it holds at least N consecutive valid laps
(N = the race's minimum consecutive laps); a racer appears only with a qualifying run, and the
racer's best qualifying run ranks:

- ``best_lap``: the fastest valid lap of the run;
- ``average``: the best mean over any N consecutive valid laps;
- ``total_time``: the fastest sum of N consecutive valid laps.

With N fixed per race, ``average`` and ``total_time`` order racers identically; only the shown
time differs. Times are integer milliseconds so sums and ties are exact. Ties go to the earlier
achievement (smaller ``Lap.order`` of the window's last lap), then to the smaller racer id.

Public API: ``Lap``, ``RankedResult``, ``RankingMethod``, ``RANKING_METHODS``,
``best_window(laps, method, n)``, ``rank_laps(laps, method, min_laps)``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

RankingMethod = Literal["best_lap", "average", "total_time"]
RANKING_METHODS: tuple[RankingMethod, ...] = ("best_lap", "average", "total_time")


@dataclass(frozen=True, slots=True)
class Lap:
    """One lap as recorded (valid or not). ``order`` is any increasing achievement key: the
    RaceTiming counter, a lap row id or a wall-clock time, the same kind for all laps ranked."""

    racer_id: int
    run_id: int
    lap_no: int  # 1-based inside the run
    time_ms: int
    valid: bool
    order: float
    sectors_ms: tuple[int, ...] = ()
    off_track: int = 0
    collisions: int = 0
    resets: int = 0
    reason: str | None = None  # why an invalid lap is invalid: "off_track", "crash", "time_up", ...


@dataclass(frozen=True, slots=True)
class RankedResult:
    rank: int  # 1-based, unique (ties are broken deterministically)
    racer_id: int
    run_id: int
    time_ms: float  # best lap, best average or best total, per the method
    gap_ms: float  # to the first row; 0 for the leader
    laps: tuple[Lap, ...]  # the laps that made the time (one for best_lap, N otherwise)
    achieved_at: float  # ``order`` of the window's last lap
    run_laps: tuple[Lap, ...]  # every lap of the ranked run (for counts on the leaderboard)


@dataclass(frozen=True, slots=True)
class _Score:
    key: int  # what is compared: lap time or window total
    achieved_at: float
    window: tuple[Lap, ...]


def _in_lap_order(run_laps: Sequence[Lap]) -> tuple[Lap, ...]:
    return tuple(sorted(run_laps, key=lambda item: (item.lap_no, item.order)))


def _chains(run_laps: Sequence[Lap]) -> list[list[Lap]]:
    """Maximal runs of valid laps with consecutive lap numbers."""
    chains: list[list[Lap]] = []
    current: list[Lap] = []
    for lap in _in_lap_order(run_laps):
        if not lap.valid:
            current = []
            continue
        if current and lap.lap_no != current[-1].lap_no + 1:
            current = []
        if not current:
            chains.append(current)
        current.append(lap)
    return chains


def _better(a: _Score | None, b: _Score) -> bool:
    return a is None or (b.key, b.achieved_at) < (a.key, a.achieved_at)


def best_window(laps: Sequence[Lap], method: RankingMethod, n: int) -> tuple[int, float, tuple[Lap, ...]] | None:
    """Best (key_ms, achieved_at, window) of one run's laps, or None if the run does not qualify.

    key_ms is the lap time (best_lap) or the window's total (average, total_time)."""
    if n < 1:
        raise ValueError(f"min_laps: {n} is out of range; allowed values: 1 or more")
    chains = [chain for chain in _chains(laps) if len(chain) >= n]
    if not chains:
        return None
    best: _Score | None = None
    for chain in chains:
        if method == "best_lap":
            for lap in chain:
                candidate = _Score(lap.time_ms, lap.order, (lap,))
                if _better(best, candidate):
                    best = candidate
            continue
        total = sum(lap.time_ms for lap in chain[:n])
        for end in range(n, len(chain) + 1):
            if end > n:
                total += chain[end - 1].time_ms - chain[end - 1 - n].time_ms
            window = tuple(chain[end - n : end])
            candidate = _Score(total, window[-1].order, window)
            if _better(best, candidate):
                best = candidate
    assert best is not None
    return best.key, best.achieved_at, best.window


def rank_laps(laps: Iterable[Lap], method: RankingMethod, min_laps: int) -> list[RankedResult]:
    """Rank racers by ``method`` over their best qualifying run (see the module docstring)."""
    if method not in RANKING_METHODS:
        raise ValueError(f"method: {method!r} is not a ranking method; allowed values: {', '.join(RANKING_METHODS)}")
    runs: dict[tuple[int, int], list[Lap]] = defaultdict(list)
    for lap in laps:
        runs[(lap.racer_id, lap.run_id)].append(lap)
    best: dict[int, tuple[int, float, int, tuple[Lap, ...], tuple[Lap, ...]]] = {}
    for (racer_id, run_id), run_laps in sorted(runs.items()):
        found = best_window(run_laps, method, min_laps)
        if found is None:
            continue
        key, achieved_at, window = found
        held = best.get(racer_id)
        if held is None or (key, achieved_at) < (held[0], held[1]):
            best[racer_id] = (key, achieved_at, run_id, window, _in_lap_order(run_laps))
    ordered_racers = sorted(best.items(), key=lambda item: (item[1][0], item[1][1], item[0]))
    divisor = min_laps if method == "average" else 1
    results: list[RankedResult] = []
    leader: float | None = None
    for rank, (racer_id, (key, achieved_at, run_id, window, kept)) in enumerate(ordered_racers, start=1):
        time_ms = key / divisor
        if leader is None:
            leader = time_ms
        results.append(
            RankedResult(
                rank=rank,
                racer_id=racer_id,
                run_id=run_id,
                time_ms=time_ms,
                gap_ms=time_ms - leader,
                laps=window,
                achieved_at=achieved_at,
                run_laps=kept,
            )
        )
    return results
