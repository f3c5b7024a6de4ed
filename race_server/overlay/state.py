"""What the broadcast shows, as one immutable value, and the feed that builds it from race events.

`BroadcastState` is the narrow interface between a race and its video: the renderer reads the pose
and objects, the overlay everything else. `BroadcastFeed` folds the RaceHost's events (countdown,
run_started, telemetry, sector, lap, penalty, run_end — `race_server.live.session`) and the race's
queue messages (run_launched, checkered, replay_ended, up_next, leaderboard — `race_server.protocol`)
into the current state; it is pure, so a scripted run drives it in tests exactly as a race does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from race_server.sim.objects import Box

Phase = Literal["idle", "countdown", "racing", "finished", "replay"]
SectorColour = Literal["purple", "green", "yellow"]
PENALTY_TEXT = {"off_track": "OFF TRACK", "crash": "CRASH", "reversed": "WRONG WAY", "immobilised": "STUCK"}
GO_SHOWN_S = 1.0


@dataclass(frozen=True)
class LeaderRow:
    rank: int
    name: str
    time_ms: float
    gap_ms: float


@dataclass(frozen=True)
class BroadcastState:
    phase: Phase = "idle"
    racer_id: int | None = None
    racer_name: str = ""
    t: float = 0.0  # the run's sim seconds since Go
    x: float | None = None
    y: float | None = None
    yaw: float = 0.0  # radians
    speed: float = 0.0  # m/s
    multiplier: float = 1.0
    lap: int = 1
    lap_time_ms: int = 0
    best_lap_ms: int | None = None
    last_lap_ms: int | None = None
    time_remaining_ms: int = 0
    penalty_remaining_ms: int = 0
    penalty: str | None = None  # the notice while the car is held, e.g. "OFF TRACK +3 s"
    sector_colours: tuple[SectorColour | None, ...] = (None, None, None)
    resets: int = 0
    off_track: int = 0
    collisions: int = 0
    countdown: int | None = None  # 10 ... 1 before Go
    coming_up: str | None = None  # the next racer's name between runs
    coming_up_slot_s: float | None = None
    leaderboard: tuple[LeaderRow, ...] = ()
    objects: tuple[Box, ...] = ()

    @property
    def has_car(self) -> bool:
        return self.x is not None and self.y is not None

    @property
    def show_go(self) -> bool:
        return self.phase == "racing" and self.t < GO_SHOWN_S

    @property
    def show_flag(self) -> bool:
        return self.phase == "finished"

    @property
    def replay(self) -> bool:
        return self.phase == "replay"


def _int(value: Any, default: int = 0) -> int:
    return default if value is None else round(float(value))


def _boxes(raw: Sequence[Sequence[Any]]) -> tuple[Box, ...]:
    """Telemetry's objects: [x, y, yaw, length, width, height, is_bot] each."""
    boxes = []
    for item in raw:
        if len(item) >= 7:
            x, y, yaw, length, width, height = (float(v) for v in item[:6])
            boxes.append(Box(x, y, yaw, length, width, height, is_bot=bool(item[6])))
    return tuple(boxes)


@dataclass
class BroadcastFeed:
    """Builds `BroadcastState` from events; ``names`` maps racer ids to display names."""

    n_sectors: int = 3
    names: dict[int, str] = field(default_factory=dict)
    state: BroadcastState = field(default_factory=BroadcastState)

    def __post_init__(self) -> None:
        self.state = replace(self.state, sector_colours=(None,) * self.n_sectors)

    def name_of(self, racer_id: int | None) -> str:
        if racer_id is None:
            return ""
        return self.names.get(racer_id, f"Racer {racer_id}")

    def set_objects(self, boxes: Sequence[Box]) -> BroadcastState:
        self.state = replace(self.state, objects=tuple(boxes))
        return self.state

    def apply(self, event: Mapping[str, Any]) -> BroadcastState:
        kind = event.get("type")
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            self.state = handler(self.state, event)
        return self.state

    def _fresh_run(self, s: BroadcastState, event: Mapping[str, Any]) -> BroadcastState:
        racer = event.get("racer_id")
        return replace(
            BroadcastState(leaderboard=s.leaderboard, objects=s.objects),
            racer_id=racer,
            racer_name=self.name_of(racer),
            sector_colours=(None,) * self.n_sectors,
        )

    def _on_run_launched(self, s: BroadcastState, e: Mapping[str, Any]) -> BroadcastState:
        slot_ms = _int(float(e.get("slot_s", 0.0)) * 1000.0)  # the clock shows the whole slot until Go
        countdown = _int(e.get("countdown_s"), 10) or None
        return replace(self._fresh_run(s, e), phase="countdown", countdown=countdown, time_remaining_ms=slot_ms)

    def _on_countdown(self, s: BroadcastState, e: Mapping[str, Any]) -> BroadcastState:
        if s.racer_id != e.get("racer_id") or s.phase not in ("countdown",):
            s = self._fresh_run(s, e)
        return replace(s, phase="countdown", countdown=int(e["value"]))

    def _on_run_started(self, s: BroadcastState, e: Mapping[str, Any]) -> BroadcastState:
        if s.racer_id != e.get("racer_id"):
            s = self._fresh_run(s, e)
        slot_ms = _int(float(e.get("slot_s", 0.0)) * 1000.0)
        return replace(s, phase="racing", countdown=None, t=0.0, time_remaining_ms=slot_ms, coming_up=None)

    def _on_telemetry(self, s: BroadcastState, e: Mapping[str, Any]) -> BroadcastState:
        if s.phase not in ("racing",):
            return s
        heading = e.get("heading")
        penalty_ms = _int(e.get("penalty_remaining_ms"))
        return replace(
            s,
            t=float(e.get("t", s.t)),
            x=e.get("x"),
            y=e.get("y"),
            yaw=math.radians(float(heading)) if heading is not None else s.yaw,
            speed=float(e.get("speed", 0.0)),
            multiplier=float(e.get("multiplier", 1.0)),
            lap=_int(e.get("lap"), 1),
            lap_time_ms=_int(e.get("lap_time_ms")),
            best_lap_ms=e.get("best_lap_ms"),
            last_lap_ms=e.get("last_lap_ms"),
            time_remaining_ms=_int(e.get("time_remaining_ms")),
            penalty_remaining_ms=penalty_ms,
            penalty=s.penalty if penalty_ms > 0 else None,
            resets=_int(e.get("resets")),
            off_track=_int(e.get("off_track")),
            collisions=_int(e.get("collisions")),
            objects=_boxes(e["objects"]) if "objects" in e else s.objects,
        )

    def _on_sector(self, s: BroadcastState, e: Mapping[str, Any]) -> BroadcastState:
        index = int(e["sector"])
        if not 0 <= index < self.n_sectors:
            return s
        colours = list(s.sector_colours)
        colours[index] = e["colour"]
        return replace(s, sector_colours=tuple(colours))

    def _on_lap(self, s: BroadcastState, e: Mapping[str, Any]) -> BroadcastState:
        best = s.best_lap_ms
        if e.get("valid"):
            time_ms = _int(e["time_ms"])
            best = time_ms if best is None else min(best, time_ms)
        return replace(s, last_lap_ms=_int(e["time_ms"]), best_lap_ms=best)

    def _on_penalty(self, s: BroadcastState, e: Mapping[str, Any]) -> BroadcastState:
        kind = str(e.get("kind", ""))
        seconds = float(e.get("seconds", 0.0))
        notice = f"{PENALTY_TEXT.get(kind, kind.upper())} +{seconds:g} s"
        return replace(
            s,
            penalty=notice,
            penalty_remaining_ms=max(s.penalty_remaining_ms, _int(seconds * 1000.0)),
            resets=_int(e.get("resets"), s.resets),
            off_track=_int(e.get("off_track"), s.off_track),
            collisions=_int(e.get("collisions"), s.collisions),
        )

    def _on_run_end(self, s: BroadcastState, e: Mapping[str, Any]) -> BroadcastState:
        if e.get("reason") == "time_up":
            return replace(s, phase="finished", time_remaining_ms=0, penalty=None, penalty_remaining_ms=0)
        return replace(s, phase="idle", countdown=None, penalty=None)

    def _on_checkered(self, s: BroadcastState, e: Mapping[str, Any]) -> BroadcastState:
        return replace(s, phase="finished", time_remaining_ms=0, penalty=None, penalty_remaining_ms=0)

    def _on_replay_started(self, s: BroadcastState, e: Mapping[str, Any]) -> BroadcastState:
        return replace(s, phase="replay")

    def _on_replay_ended(self, s: BroadcastState, e: Mapping[str, Any]) -> BroadcastState:
        return replace(s, phase="idle", x=None, y=None)

    def _on_run_failed(self, s: BroadcastState, e: Mapping[str, Any]) -> BroadcastState:
        return replace(s, phase="idle", x=None, y=None, countdown=None)

    def _on_up_next(self, s: BroadcastState, e: Mapping[str, Any]) -> BroadcastState:
        racer = e.get("racer_id")
        slot = e.get("slot_s")
        return replace(s, coming_up=self.name_of(racer) if racer is not None else None, coming_up_slot_s=slot)

    def _on_leaderboard(self, s: BroadcastState, e: Mapping[str, Any]) -> BroadcastState:
        rows = []
        for row in e.get("rows", []):
            name = row.get("racer_name") or self.name_of(row.get("racer_id"))
            rows.append(LeaderRow(int(row["rank"]), name, float(row["time_ms"]), float(row.get("gap_ms", 0.0))))
        return replace(s, leaderboard=tuple(rows))

    def _on_leaderboard_cleared(self, s: BroadcastState, e: Mapping[str, Any]) -> BroadcastState:
        return replace(s, leaderboard=())
