"""Race settings: what an organizer chooses when creating or editing a race (SPEC "Evaluation and
race rules", guide "Customize a race").

``parse_race_config(data)`` turns a JSON-like mapping into a frozen ``RaceConfig`` or raises
``RaceConfigError`` listing EVERY problem at once, each naming its field (dotted path) and the
allowed values. ``RaceConfig.to_dict()`` gives the same mapping back (JSON-able; dates as ISO 8601
with offset), so an edit is ``parse_race_config({**config.to_dict(), **changes})``.

Keys (defaults in brackets):
  name (1-64 characters), format "classic" | "live",
  race_type ["time_trial"] | "object_avoidance" | "head_to_bot",
  track_id (a tracks.json trackId), direction ["the track's default"] "CLOCKWISE" | "COUNTER_CLOCKWISE",
  time_zone ["UTC"] IANA name, start (ISO 8601; naive means local time in time_zone),
  end (classic: required, after start; LIVE: [start + 4 h]),
  ranking ["best_lap"] | "average" | "total_time" (LIVE: best_lap only),
  off_track_penalty_s [3] 0-30, collision_penalty_s [3] 0-30, resets ["unlimited"] | "none",
  min_consecutive_laps (classic [3] 1-10; LIVE 1 only), time_per_racer_min [3] 1-10 (integer),
  evaluation_trials [3] 1-10, replay_s [15] 0-60 (LIVE replay after the checkered flag),
  description [""] up to 2000 characters (links allowed), closed [false],
  object_avoidance {randomize [false], count [len(obstacles)] 1-6,
                    obstacles [{lane "inside" | "outside", location_pct 7-90}]} (object_avoidance only),
  head_to_bot {bots [3] 1-6, speed_mps [1.0] 0.2-6, lane_change [false],
               min_lane_change_s [2] 1-8, max_lane_change_s [5] 1-8 (>= min)} (head_to_bot only).

Status (``race_status``): "closed" if the closed flag is set or the end has passed, "opening_soon"
before the start, else "open".
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from race_server.races.ranking import RANKING_METHODS, RankingMethod
from race_server.sim.tracks import list_tracks, resolve_track

RaceFormat = Literal["classic", "live"]
RaceType = Literal["time_trial", "object_avoidance", "head_to_bot"]
ResetsPolicy = Literal["unlimited", "none"]
Lane = Literal["inside", "outside"]
Direction = Literal["CLOCKWISE", "COUNTER_CLOCKWISE"]
RaceStatus = Literal["opening_soon", "open", "closed"]

RACE_FORMATS: tuple[RaceFormat, ...] = ("classic", "live")
RACE_TYPES: tuple[RaceType, ...] = ("time_trial", "object_avoidance", "head_to_bot")
RESETS_POLICIES: tuple[ResetsPolicy, ...] = ("unlimited", "none")
LANES: tuple[Lane, ...] = ("inside", "outside")
DIRECTIONS: tuple[Direction, ...] = ("CLOCKWISE", "COUNTER_CLOCKWISE")

NAME_MAX = 64
DESCRIPTION_MAX = 2000
LIVE_DEFAULT_DURATION = timedelta(hours=4)
_URL = re.compile(r"https?://[^\s<>\"']+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Obstacle:
    lane: Lane
    location_pct: float  # 7-90 % of the lap from the start line


@dataclass(frozen=True, slots=True)
class ObjectAvoidance:
    randomize: bool  # boxes placed at random each episode instead of ``obstacles``
    count: int
    obstacles: tuple[Obstacle, ...]  # empty when randomize


@dataclass(frozen=True, slots=True)
class HeadToBot:
    bots: int
    speed_mps: float
    lane_change: bool
    min_lane_change_s: float
    max_lane_change_s: float


@dataclass(frozen=True, slots=True)
class RaceConfig:
    name: str
    format: RaceFormat
    race_type: RaceType
    track_id: str
    direction: Direction
    route_id: str  # resolved from track_id + direction (SPEC "Tracks")
    reverse: bool
    time_zone: str
    start: datetime  # timezone-aware
    end: datetime  # timezone-aware, after start
    ranking: RankingMethod
    off_track_penalty_s: float
    collision_penalty_s: float
    resets: ResetsPolicy
    min_consecutive_laps: int
    time_per_racer_min: int
    evaluation_trials: int
    replay_s: float
    description: str
    closed: bool
    object_avoidance: ObjectAvoidance | None
    head_to_bot: HeadToBot | None

    @property
    def time_per_racer_s(self) -> float:
        return float(self.time_per_racer_min * 60)

    @property
    def is_live(self) -> bool:
        return self.format == "live"

    def status(self, now: datetime) -> RaceStatus:
        return race_status(self.start, self.end, self.closed, now)

    def description_links(self) -> list[str]:
        return description_links(self.description)

    def to_dict(self) -> dict[str, Any]:
        """The settings as accepted by ``parse_race_config`` (derived route_id/reverse included)."""
        data: dict[str, Any] = {
            "name": self.name,
            "format": self.format,
            "race_type": self.race_type,
            "track_id": self.track_id,
            "direction": self.direction,
            "route_id": self.route_id,
            "reverse": self.reverse,
            "time_zone": self.time_zone,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "ranking": self.ranking,
            "off_track_penalty_s": self.off_track_penalty_s,
            "collision_penalty_s": self.collision_penalty_s,
            "resets": self.resets,
            "min_consecutive_laps": self.min_consecutive_laps,
            "time_per_racer_min": self.time_per_racer_min,
            "evaluation_trials": self.evaluation_trials,
            "replay_s": self.replay_s,
            "description": self.description,
            "closed": self.closed,
            "object_avoidance": None,
            "head_to_bot": None,
        }
        if self.object_avoidance is not None:
            oa = self.object_avoidance
            data["object_avoidance"] = {
                "randomize": oa.randomize,
                "count": oa.count,
                "obstacles": [{"lane": o.lane, "location_pct": o.location_pct} for o in oa.obstacles],
            }
        if self.head_to_bot is not None:
            hb = self.head_to_bot
            data["head_to_bot"] = {
                "bots": hb.bots,
                "speed_mps": hb.speed_mps,
                "lane_change": hb.lane_change,
                "min_lane_change_s": hb.min_lane_change_s,
                "max_lane_change_s": hb.max_lane_change_s,
            }
        return data


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    field: str  # dotted path, e.g. "object_avoidance.obstacles[1].location_pct"
    message: str  # names the field and the allowed values

    def __str__(self) -> str:
        return self.message


class RaceConfigError(ValueError):
    """Every problem found in one pass."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(p.message for p in problems))

    def by_field(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for problem in self.problems:
            out.setdefault(problem.field, []).append(problem.message)
        return out


def race_status(start: datetime, end: datetime, closed: bool, now: datetime) -> RaceStatus:
    if now.tzinfo is None:
        raise ValueError("now: must be timezone-aware")
    if closed or now >= end:
        return "closed"
    if now < start:
        return "opening_soon"
    return "open"


def description_links(description: str) -> list[str]:
    """http(s) links in a description, in order (the web renders them as links, escaped)."""
    return [m.group(0).rstrip(".,;:!?)") for m in _URL.finditer(description)]


def _fmt(value: float) -> str:
    return f"{value:g}"


@dataclass
class _Checker:
    """Reads fields from one mapping, collecting problems instead of stopping at the first."""

    data: Mapping[str, Any]
    prefix: str = ""
    problems: list[ConfigProblem] = field(default_factory=list)

    def path(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def fail(self, key: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.path(key), f"{self.path(key)}: {message}"))

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def choice(self, key: str, options: tuple[T, ...], default: T | None, what: str) -> T | None:
        value = self.data.get(key)
        if value is None:
            if default is None:
                self.fail(key, f"required; allowed values: {', '.join(map(str, options))}")
            return default
        if value not in options:
            self.fail(key, f"{value!r} is not a {what}; allowed values: {', '.join(map(str, options))}")
            return None
        return cast(T, value)

    def integer(self, key: str, lo: int, hi: int, default: int | None, unit: str = "") -> int | None:
        value = self.data.get(key)
        allowed = f"allowed values: whole numbers {lo} to {hi}{unit}"
        if value is None:
            if default is None:
                self.fail(key, f"required; {allowed}")
            return default
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"{value!r} is not a whole number; {allowed}")
            return None
        if not lo <= value <= hi:
            self.fail(key, f"{value} is out of range; {allowed}")
            return None
        return value

    def number(self, key: str, lo: float, hi: float, default: float | None, unit: str) -> float | None:
        value = self.data.get(key)
        allowed = f"allowed values: {_fmt(lo)} to {_fmt(hi)}{unit}"
        if value is None:
            if default is None:
                self.fail(key, f"required; {allowed}")
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(key, f"{value!r} is not a number; {allowed}")
            return None
        if not lo <= value <= hi:
            self.fail(key, f"{_fmt(value)} is out of range; {allowed}")
            return None
        return float(value)

    def boolean(self, key: str, default: bool) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key, f"{value!r} is not a boolean; allowed values: true, false")
            return None
        return value

    def text(self, key: str, max_len: int, required: bool) -> str | None:
        value = self.data.get(key)
        limit = f"allowed: {'1' if required else '0'} to {max_len} characters"
        if value is None:
            if required:
                self.fail(key, f"required; {limit}")
                return None
            return ""
        if not isinstance(value, str):
            self.fail(key, f"{value!r} is not text; {limit}")
            return None
        value = value.strip()
        if required and not value:
            self.fail(key, f"must not be empty; {limit}")
            return None
        if len(value) > max_len:
            self.fail(key, f"{len(value)} characters is too long; {limit}")
            return None
        if _CONTROL.search(value):
            self.fail(key, f"contains control characters; {limit} of printable text, line breaks allowed")
            return None
        return value

    def moment(self, key: str, zone: ZoneInfo | None, required: bool) -> datetime | None:
        value = self.data.get(key)
        allowed = "allowed values: an ISO 8601 date and time, e.g. 2025-07-08T19:00:00-07:00"
        if value is None:
            if required:
                self.fail(key, f"required; {allowed}")
            return None
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                self.fail(key, f"{value!r} is not a date and time; {allowed}")
                return None
        if not isinstance(value, datetime):
            self.fail(key, f"{value!r} is not a date and time; {allowed}")
            return None
        if value.tzinfo is None:
            if zone is None:
                return None  # the time_zone problem is already reported
            value = value.replace(tzinfo=zone)
        return value

    def child(self, key: str) -> _Checker | None:
        value = self.data.get(key)
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            self.fail(key, f"{value!r} is not an object of settings")
            return None
        return _Checker(value, prefix=f"{self.path(key)}.", problems=self.problems)

    def unknown(self, known: set[str]) -> None:
        for key in self.data:
            if key not in known:
                self.fail(str(key), f"unknown setting; allowed settings: {', '.join(sorted(known))}")


_TOP_KEYS = {
    "name", "format", "race_type", "track_id", "direction", "route_id", "reverse", "time_zone", "start", "end",
    "ranking", "off_track_penalty_s", "collision_penalty_s", "resets", "min_consecutive_laps",
    "time_per_racer_min", "evaluation_trials", "replay_s", "description", "closed", "object_avoidance",
    "head_to_bot",
}  # fmt: skip


def _track_defaults() -> dict[str, str]:
    return {info.track_id: info.default_direction for info in list_tracks()}


def _object_avoidance(c: _Checker) -> ObjectAvoidance | None:
    c.unknown({"randomize", "count", "obstacles"})
    randomize = c.boolean("randomize", False)
    raw = c.data.get("obstacles")
    obstacles: list[Obstacle] = []
    obstacles_ok = True
    if raw is None:
        raw = []
    if not isinstance(raw, list | tuple):
        c.fail("obstacles", f"{raw!r} is not a list of obstacles; allowed: 1 to 6 of {{lane, location_pct}}")
        raw, obstacles_ok = [], False
    if randomize and raw:
        c.fail("obstacles", "must be empty when randomize is true (random boxes are placed each episode)")
        obstacles_ok = False
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            c.fail(f"obstacles[{index}]", f"{item!r} is not an obstacle; allowed: {{lane, location_pct}}")
            obstacles_ok = False
            continue
        oc = _Checker(item, prefix=f"{c.path('obstacles')}[{index}].", problems=c.problems)
        oc.unknown({"lane", "location_pct"})
        lane = oc.choice("lane", LANES, None, "lane")
        location = oc.number("location_pct", 7, 90, None, " % of the lap")
        if lane is None or location is None:
            obstacles_ok = False
        else:
            obstacles.append(Obstacle(lane, location))
    default_count = len(raw) if raw else None
    count = c.integer("count", 1, 6, default_count, " boxes")
    if count is not None and not randomize and obstacles_ok and len(raw) != count:
        c.fail("obstacles", f"{len(raw)} obstacles given for count {count}; allowed: exactly count obstacles")
        obstacles_ok = False
    if randomize is None or count is None or not obstacles_ok:
        return None
    return ObjectAvoidance(randomize, count, tuple(obstacles))


def _head_to_bot(c: _Checker) -> HeadToBot | None:
    c.unknown({"bots", "speed_mps", "lane_change", "min_lane_change_s", "max_lane_change_s"})
    bots = c.integer("bots", 1, 6, 3, " bot cars")
    speed = c.number("speed_mps", 0.2, 6, 1.0, " m/s")
    lane_change = c.boolean("lane_change", False)
    lo = c.number("min_lane_change_s", 1, 8, 2.0, " seconds")
    hi = c.number("max_lane_change_s", 1, 8, 5.0, " seconds")
    if lo is not None and hi is not None and lo > hi:
        c.fail(
            "max_lane_change_s",
            f"{_fmt(hi)} is below min_lane_change_s {_fmt(lo)}; allowed values: {_fmt(lo)} to 8 seconds",
        )
        return None
    if bots is None or speed is None or lane_change is None or lo is None or hi is None:
        return None
    return HeadToBot(bots, speed, lane_change, lo, hi)


def _section(top: _Checker, key: str, race_type: RaceType | None, build: Callable[[_Checker], T]) -> T | None:
    if race_type != key:
        if top.has(key) and race_type is not None:
            top.fail(key, f"only for race_type {key}; this race is {race_type}")
        return None
    child = top.child(key)
    return None if child is None else build(child)


def parse_race_config(data: Mapping[str, Any]) -> RaceConfig:
    """Validate race settings; raises ``RaceConfigError`` with every problem found."""
    if not isinstance(data, Mapping):
        raise RaceConfigError([ConfigProblem("", f"race settings must be an object, not {type(data).__name__}")])
    c = _Checker(data)
    c.unknown(_TOP_KEYS)
    name = c.text("name", NAME_MAX, required=True)
    fmt = c.choice("format", RACE_FORMATS, None, "race format")
    race_type = c.choice("race_type", RACE_TYPES, "time_trial", "race type")
    live = fmt == "live"

    track_id = c.text("track_id", 100, required=True)
    direction: Direction | None = None
    route: tuple[str, bool] | None = None
    if track_id:
        defaults = _track_defaults()
        if track_id not in defaults:
            c.fail("track_id", f"unknown track {track_id!r}; allowed values: {', '.join(sorted(defaults))}")
        else:
            direction = c.choice("direction", DIRECTIONS, cast(Direction, defaults[track_id]), "direction")
            if direction is not None:
                try:
                    route = resolve_track(track_id, direction)
                except ValueError as error:
                    c.fail("direction", str(error).removeprefix("direction: "))

    zone: ZoneInfo | None = None
    zone_name = c.data.get("time_zone") or "UTC"
    try:
        zone = ZoneInfo(str(zone_name))
    except (ZoneInfoNotFoundError, ValueError):
        c.fail("time_zone", f"unknown time zone {zone_name!r}; allowed values: IANA names such as Europe/Paris, UTC")
    start = c.moment("start", zone, required=True)
    end = c.moment("end", zone, required=not live)
    if live and start is not None and end is None and not c.has("end"):
        end = start + LIVE_DEFAULT_DURATION
    if start is not None and end is not None and end <= start:
        c.fail("end", f"{end.isoformat()} is not after start {start.isoformat()}; allowed: a time after start")

    ranking = c.choice("ranking", RANKING_METHODS, "best_lap", "ranking method")
    if live and ranking is not None and ranking != "best_lap":
        c.fail("ranking", f"{ranking!r}: LIVE races rank by best lap; allowed values: best_lap")
    off_track = c.number("off_track_penalty_s", 0, 30, 3.0, " seconds")
    collision = c.number("collision_penalty_s", 0, 30, 3.0, " seconds")
    resets = c.choice("resets", RESETS_POLICIES, "unlimited", "resets policy")
    if live:
        min_laps = c.integer("min_consecutive_laps", 1, 1, 1, " (LIVE races rank single laps)")
    else:
        min_laps = c.integer("min_consecutive_laps", 1, 10, 3, " laps")
    per_racer = c.integer("time_per_racer_min", 1, 10, 3, " minutes")
    trials = c.integer("evaluation_trials", 1, 10, 3, " trials")
    replay = c.number("replay_s", 0, 60, 15.0, " seconds")
    description = c.text("description", DESCRIPTION_MAX, required=False)
    closed = c.boolean("closed", False)
    object_avoidance = _section(c, "object_avoidance", race_type, _object_avoidance)
    head_to_bot = _section(c, "head_to_bot", race_type, _head_to_bot)

    if c.problems:
        raise RaceConfigError(c.problems)
    assert name is not None and fmt is not None and race_type is not None and track_id is not None
    assert direction is not None and route is not None and start is not None and end is not None
    assert ranking is not None and off_track is not None and collision is not None and resets is not None
    assert min_laps is not None and per_racer is not None and trials is not None and replay is not None
    assert description is not None and closed is not None
    return RaceConfig(
        name=name,
        format=fmt,
        race_type=race_type,
        track_id=track_id,
        direction=direction,
        route_id=route[0],
        reverse=route[1],
        time_zone=str(zone_name),
        start=start,
        end=end,
        ranking=ranking,
        off_track_penalty_s=off_track,
        collision_penalty_s=collision,
        resets=resets,
        min_consecutive_laps=min_laps,
        time_per_racer_min=per_racer,
        evaluation_trials=trials,
        replay_s=replay,
        description=description,
        closed=closed,
        object_avoidance=object_avoidance,
        head_to_bot=head_to_bot,
    )
