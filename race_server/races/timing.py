"""Authoritative race timing, fed by simulation events (pure; times are passed in).

``RaceTiming`` is one race session: every recorded lap, per-racer bests and the session bests
(all racers) for laps and each sector. ``RaceTiming.start_run(...)`` returns a ``RunTiming`` for
one racer's slot; the RaceHost feeds it, in sim-time seconds (the run's clock, started at Go):

- ``sector_crossed(sector, t)``: the car left sector ``sector`` (0-based) at ``t``, the sub-step
  interpolated crossing time; the last sector ends with ``lap_completed(t)`` (interpolated too);
- ``reset(kind, t)``: off track / reversed / immobilised (off-track penalty) or crash (collision
  penalty). With resets "unlimited" the car is held still for the penalty, which counts in lap
  time and in the racer's slot. With resets "none" the lap in progress is invalid (red) and the
  attempt is over until ``restart_attempt(t)`` puts the car back on the start line;
- ``finish(t, reason)``: the slot ended (checkered flag) or the run failed; a lap in progress is
  recorded as invalid with that reason.

Times are rounded to integer milliseconds on entry, so sector times sum exactly to the lap time.
Every feeding method returns a list of event dicts (``{"type": "sector" | "lap" | "penalty" |
"attempt_ended", ...}``, see ``race_server.protocol``) for the shell to store and publish.

Colours, decided when a sector (or lap) ends: purple if strictly faster than the session's best so
far (all racers; the first time set is purple), else green if strictly faster than the racer's
personal best (the racer's first is green unless purple), else yellow. Laps likewise, plus red for
an invalid lap (DREM's lap colours). Bests carry over between runs of the same racer: a relaunch
gets a fresh ``RunTiming`` and a fresh full slot, and laps already completed stay recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from race_server.races.ranking import Lap, RankedResult, RankingMethod, rank_laps

ResetKind = Literal["off_track", "crash", "reversed", "immobilised"]
RESET_KINDS: tuple[ResetKind, ...] = ("off_track", "crash", "reversed", "immobilised")
FinishReason = Literal["time_up", "run_failed", "interrupted"]
SectorColour = Literal["purple", "green", "yellow"]
LapColour = Literal["purple", "green", "yellow", "red"]
ResetsPolicy = Literal["unlimited", "none"]
Event = dict[str, Any]


class TimingError(ValueError):
    """A call that cannot happen in the run's current state (a bug in the caller)."""


def to_ms(t: float) -> int:
    return round(t * 1000.0)


@dataclass
class Bests:
    """Best lap and best sector times (ms) of a racer or of the whole session."""

    lap_ms: int | None = None
    sector_ms: list[int | None] = field(default_factory=list)


def _colour(time_ms: int, session: int | None, personal: int | None) -> SectorColour:
    if session is None or time_ms < session:
        return "purple"
    if personal is None or time_ms < personal:
        return "green"
    return "yellow"


class RaceTiming:
    """Session-wide timing state. ``laps`` may restore recorded laps after a restart."""

    def __init__(
        self,
        *,
        n_sectors: int = 3,
        resets: ResetsPolicy = "unlimited",
        off_track_penalty_s: float = 3.0,
        collision_penalty_s: float = 3.0,
        laps: Iterable[Lap] = (),
    ) -> None:
        if n_sectors < 1:
            raise ValueError("n_sectors: must be at least 1")
        self.n_sectors = n_sectors
        self.resets: ResetsPolicy = resets
        self.off_track_penalty_s = off_track_penalty_s
        self.collision_penalty_s = collision_penalty_s
        self.laps: list[Lap] = []
        self.session = Bests(sector_ms=[None] * n_sectors)
        self._personal: dict[int, Bests] = {}
        self._order = 0
        for lap in sorted(laps, key=lambda item: item.order):
            self._order = max(self._order, int(lap.order))
            self._record(lap)

    def personal(self, racer_id: int) -> Bests:
        return self._personal.setdefault(racer_id, Bests(sector_ms=[None] * self.n_sectors))

    def next_order(self) -> int:
        self._order += 1
        return self._order

    def clear(self) -> None:
        """Clear leaderboard ranking: laps and every best are forgotten."""
        self.laps.clear()
        self.session = Bests(sector_ms=[None] * self.n_sectors)
        self._personal.clear()

    def start_run(self, racer_id: int, run_id: int, slot_s: float, go_t: float = 0.0) -> RunTiming:
        """Timing for one slot; the first lap starts at ``go_t`` (Go)."""
        return RunTiming(self, racer_id, run_id, slot_s, go_t)

    def ranking(self, method: RankingMethod = "best_lap", min_laps: int = 1) -> list[RankedResult]:
        return rank_laps(self.laps, method, min_laps)

    def sector_colour(self, racer_id: int, sector: int, time_ms: int) -> SectorColour:
        """Colour for a sector time, then record it in the bests."""
        personal = self.personal(racer_id)
        colour = _colour(time_ms, self.session.sector_ms[sector], personal.sector_ms[sector])
        if colour == "purple":
            self.session.sector_ms[sector] = time_ms
        if colour != "yellow":
            personal.sector_ms[sector] = time_ms
        return colour

    def _record(self, lap: Lap) -> None:
        """Restore one stored lap: its sectors and (if valid) its time feed the bests."""
        personal = self.personal(lap.racer_id)
        for index, sector_ms in enumerate(lap.sectors_ms[: self.n_sectors]):
            session_best = self.session.sector_ms[index]
            if session_best is None or sector_ms < session_best:
                self.session.sector_ms[index] = sector_ms
            best = personal.sector_ms[index]
            if best is None or sector_ms < best:
                personal.sector_ms[index] = sector_ms
        self.record_lap(lap)

    def record_lap(self, lap: Lap) -> LapColour:
        """Store a finished lap; sector bests are updated by ``sector_colour`` as sectors end."""
        self.laps.append(lap)
        if not lap.valid:
            return "red"
        personal = self.personal(lap.racer_id)
        colour: LapColour = _colour(lap.time_ms, self.session.lap_ms, personal.lap_ms)
        if colour == "purple":
            self.session.lap_ms = lap.time_ms
        if colour != "yellow":
            personal.lap_ms = lap.time_ms
        return colour


class RunTiming:
    """One racer's slot: laps, sectors, penalties and counts (see the module docstring)."""

    def __init__(self, race: RaceTiming, racer_id: int, run_id: int, slot_s: float, go_t: float) -> None:
        self.race = race
        self.racer_id = racer_id
        self.run_id = run_id
        self.go_ms = to_ms(go_t)
        self.end_ms = self.go_ms + to_ms(slot_s)
        self.lap_no = 1
        self.lap_start_ms = self.go_ms
        self.sector = 0
        self.sector_start_ms = self.go_ms
        self.sectors_ms: list[int] = []
        self.sector_colours: list[SectorColour] = []
        self.held_until_ms = self.go_ms
        self.attempt_over = False
        self.finished = False
        self.off_track = 0
        self.collisions = 0
        self.resets = 0
        self.laps_completed = 0
        self.last_lap_ms: int | None = None
        self._lap_counts = (0, 0, 0)  # off_track, collisions, resets when the lap started

    # --- views -------------------------------------------------------------------------------
    def current_lap_time_ms(self, t: float) -> int:
        if self.attempt_over or self.finished:
            return 0
        return max(0, min(to_ms(t), self.end_ms) - self.lap_start_ms)

    def time_remaining_ms(self, t: float) -> int:
        return max(0, self.end_ms - max(to_ms(t), self.go_ms))

    def penalty_remaining_ms(self, t: float) -> int:
        return max(0, self.held_until_ms - to_ms(t))

    def best_lap_ms(self) -> int | None:
        return self.race.personal(self.racer_id).lap_ms

    def status(self, t: float) -> dict[str, Any]:
        """Timing fields for a telemetry message."""
        return {
            "racer_id": self.racer_id,
            "run_id": self.run_id,
            "lap": self.lap_no,
            "sector": self.sector,
            "lap_time_ms": self.current_lap_time_ms(t),
            "time_remaining_ms": self.time_remaining_ms(t),
            "penalty_remaining_ms": self.penalty_remaining_ms(t),
            "best_lap_ms": self.best_lap_ms(),
            "last_lap_ms": self.last_lap_ms,
            "sector_colours": list(self.sector_colours),
            "resets": self.resets,
            "off_track": self.off_track,
            "collisions": self.collisions,
            "laps": self.laps_completed,
        }

    # --- feeding -----------------------------------------------------------------------------
    def _check_live(self, what: str) -> None:
        if self.finished:
            raise TimingError(f"{what}: run {self.run_id} is finished")
        if self.attempt_over:
            raise TimingError(f"{what}: the attempt is over; call restart_attempt first")

    def _base(self, kind: str) -> Event:
        return {"type": kind, "racer_id": self.racer_id, "run_id": self.run_id}

    def _end_sector(self, t_ms: int) -> Event:
        time_ms = t_ms - self.sector_start_ms
        colour = self.race.sector_colour(self.racer_id, self.sector, time_ms)
        self.sectors_ms.append(time_ms)
        self.sector_colours.append(colour)
        event = {**self._base("sector"), "lap": self.lap_no, "sector": self.sector}
        event.update(time_ms=time_ms, colour=colour)
        self.sector += 1
        self.sector_start_ms = t_ms
        return event

    def sector_crossed(self, sector: int, t: float) -> list[Event]:
        """The car left ``sector`` at ``t``. A crossing of a sector other than the current one
        (e.g. driven again after a reset re-placed the car) is ignored."""
        self._check_live("sector_crossed")
        t_ms = to_ms(t)
        if sector != self.sector or sector >= self.race.n_sectors - 1 or t_ms > self.end_ms:
            return []
        return [self._end_sector(t_ms)]

    def lap_completed(self, t: float) -> list[Event]:
        """The car crossed the finish line at ``t``; the next lap starts at ``t``. A crossing after
        the slot's end does not count (the lap is recorded as time_up)."""
        self._check_live("lap_completed")
        t_ms = to_ms(t)
        if t_ms > self.end_ms:
            return self.finish(self.end_ms / 1000.0, "time_up")
        events: list[Event] = []
        if self.sector == self.race.n_sectors - 1:
            events.append(self._end_sector(t_ms))
        events.append(self._close_lap(t_ms, valid=True, reason=None))
        self.laps_completed += 1
        self._open_lap(t_ms)
        return events

    def reset(self, kind: ResetKind, t: float) -> list[Event]:
        """A reset-worthy episode end at ``t`` (see the module docstring)."""
        self._check_live("reset")
        if kind not in RESET_KINDS:
            raise TimingError(f"kind: {kind!r}; allowed values: {', '.join(RESET_KINDS)}")
        t_ms = to_ms(t)
        if kind == "off_track":
            self.off_track += 1
        elif kind == "crash":
            self.collisions += 1
        if self.race.resets == "none":
            events = [self._close_lap(t_ms, valid=False, reason=kind)]
            self.attempt_over = True
            events.append({**self._base("attempt_ended"), "lap": self.lap_no, "reason": kind})
            return events
        self.resets += 1
        penalty_s = self.race.collision_penalty_s if kind == "crash" else self.race.off_track_penalty_s
        self.held_until_ms = max(self.held_until_ms, t_ms) + to_ms(penalty_s)
        return [
            {
                **self._base("penalty"),
                "kind": kind,
                "seconds": penalty_s,
                "resets": self.resets,
                "off_track": self.off_track,
                "collisions": self.collisions,
            }
        ]

    def restart_attempt(self, t: float) -> list[Event]:
        """Resets "none": the car is back on the start line at ``t``; a new lap starts."""
        if self.finished:
            raise TimingError(f"restart_attempt: run {self.run_id} is finished")
        if not self.attempt_over:
            raise TimingError("restart_attempt: the attempt is still going")
        self.attempt_over = False
        self.lap_no += 1
        self._open_lap(to_ms(t))
        return []

    def finish(self, t: float, reason: FinishReason) -> list[Event]:
        """End of the slot (or of a failed run); a lap in progress is recorded invalid."""
        if self.finished:
            return []
        events: list[Event] = []
        if not self.attempt_over:
            events.append(self._close_lap(min(to_ms(t), self.end_ms), valid=False, reason=reason))
        self.finished = True
        return events

    # --- laps --------------------------------------------------------------------------------
    def _open_lap(self, t_ms: int) -> None:
        self.lap_start_ms = t_ms
        self.sector = 0
        self.sector_start_ms = t_ms
        self.sectors_ms = []
        self.sector_colours = []
        self._lap_counts = (self.off_track, self.collisions, self.resets)

    def _close_lap(self, t_ms: int, *, valid: bool, reason: str | None) -> Event:
        lap = Lap(
            racer_id=self.racer_id,
            run_id=self.run_id,
            lap_no=self.lap_no,
            time_ms=t_ms - self.lap_start_ms,
            valid=valid,
            order=self.race.next_order(),
            sectors_ms=tuple(self.sectors_ms),
            off_track=self.off_track - self._lap_counts[0],
            collisions=self.collisions - self._lap_counts[1],
            resets=self.resets - self._lap_counts[2],
            reason=reason,
        )
        colour = self.race.record_lap(lap)
        if valid:
            self.last_lap_ms = lap.time_ms
        event = {
            **self._base("lap"),
            "lap": lap.lap_no,
            "time_ms": lap.time_ms,
            "valid": valid,
            "colour": colour,
            "reason": reason,
            "sectors_ms": list(lap.sectors_ms),
            "off_track": lap.off_track,
            "collisions": lap.collisions,
            "resets": lap.resets,
            "order": lap.order,
        }
        if valid:
            self.lap_no += 1
        return event
