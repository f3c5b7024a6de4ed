"""Timing on a real track (pure; times are passed in): line-sensor crossings and the timekeeper's
buttons become the same laps, penalties and events as the simulator's (``races.timing``).

- ``Debouncer``: a car crossing a line sensor triggers it several times (wheels, body, reflections);
  a crossing within ``hold_s`` (2 s) of the last accepted one is the same crossing and is dropped.
- ``RunClock``: the run's clock on a real track, in seconds since Go, that stops while the
  timekeeper pauses the run (track blocked, car fetched): pauses count in neither lap time nor
  the racer's slot.
- ``TrackRun``: one racer's slot on the real track, on top of a ``RunTiming``. The start is
  standing: lap 1 starts at Go, each accepted crossing after Go completes a lap (the crossing of
  the car being put on the line before Go is ignored). The timekeeper's buttons: ``lap`` (a lap
  by hand, not debounced: the person decides), ``off_track(+1/−1)`` (count a reset, or take a
  mistaken one back), ``dnf`` (the run ends; the lap in progress is invalid), ``undo_last_lap``
  (a false lap is merged into the lap in progress; bests are recomputed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from race_server.races.ranking import Lap
from race_server.races.timing import RaceTiming, RunTiming, to_ms

DEBOUNCE_S = 2.0
Event = dict[str, Any]


class Debouncer:
    def __init__(self, hold_s: float = DEBOUNCE_S) -> None:
        if hold_s < 0:
            raise ValueError(f"hold_s: {hold_s!r}; allowed values: 0 or more seconds")
        self.hold_s = hold_s
        self.last: float | None = None

    def accept(self, t: float) -> bool:
        """True for a new crossing at ``t``; False for a repeat within ``hold_s`` (or out of order)."""
        if self.last is not None and t < self.last + self.hold_s:
            return False
        self.last = t
        return True


@dataclass
class RunClock:
    """Seconds since Go on a monotonic source, minus pauses (see the module docstring)."""

    go: float  # the source's reading at Go
    paused_at: float | None = None
    paused_total: float = 0.0

    def t(self, now: float) -> float:
        end = self.paused_at if self.paused_at is not None else now
        return end - self.go - self.paused_total

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    def pause(self, now: float) -> None:
        if self.paused_at is None:
            self.paused_at = now

    def resume(self, now: float) -> None:
        if self.paused_at is not None:
            self.paused_total += now - self.paused_at
            self.paused_at = None


def rebuild_bests(race: RaceTiming, laps: list[Lap]) -> None:
    """Forget every best and record ``laps`` again (after a lap was taken back)."""
    race.clear()
    for lap in sorted(laps, key=lambda item: item.order):
        race._record(lap)


@dataclass
class TrackRun:
    run: RunTiming
    debounce: Debouncer = field(default_factory=Debouncer)

    def crossing(self, t: float) -> list[Event]:
        """A line-sensor crossing at run time ``t`` (seconds since Go)."""
        if t <= 0 or self.run.finished or not self.debounce.accept(t):
            return []
        return self._lap(t)

    def lap(self, t: float) -> list[Event]:
        """The timekeeper's lap button."""
        if self.run.finished:
            return []
        self.debounce.last = t
        return self._lap(t)

    def _lap(self, t: float) -> list[Event]:
        if self.run.attempt_over:
            return self.run.restart_attempt(t)  # resets "none": this crossing starts the next attempt
        return self.run.lap_completed(t)

    def off_track(self, t: float, delta: int) -> list[Event]:
        """+1: the car left the track (a reset, with the race's penalty rules); −1: take one back."""
        run = self.run
        if run.finished or delta not in (1, -1):
            return []
        if delta == 1:
            if run.attempt_over:
                return []
            return run.reset("off_track", t)
        if run.off_track == 0:
            return []
        run.off_track -= 1
        run.resets = max(0, run.resets - 1)
        run.held_until_ms = min(run.held_until_ms, to_ms(t))
        return []

    def dnf(self, t: float) -> list[Event]:
        return self.run.finish(t, "run_failed")

    def undo_last_lap(self) -> Lap | None:
        """Take back this run's last completed lap; the lap in progress then started where it did."""
        run = self.run
        race = run.race
        mine = [lap for lap in race.laps if lap.run_id == run.run_id and lap.valid]
        if not mine or run.finished:
            return None
        last = mine[-1]
        race.laps.remove(last)
        rebuild_bests(race, list(race.laps))
        run.lap_no = last.lap_no
        run.laps_completed = max(0, run.laps_completed - 1)
        run.lap_start_ms -= last.time_ms
        run.sector_start_ms = run.lap_start_ms
        run.sector = 0
        run.sectors_ms = []
        run.sector_colours = []
        earlier = [lap for lap in mine[:-1]]
        run.last_lap_ms = earlier[-1].time_ms if earlier else None
        self.debounce.last = None
        return last
