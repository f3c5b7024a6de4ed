"""DeepRacer simtrace CSV: one row per step, written per iteration (see SPEC "Model folder").

Values are written the way the DeepRacer simulator writes them (Python ``repr`` floats, ``steps``
as a float, ``True``/``False``) so existing analysis notebooks read our files unchanged.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

BASE_COLUMNS: tuple[str, ...] = (
    "episode",
    "steps",
    "X",
    "Y",
    "yaw",
    "steer",
    "throttle",
    "action",
    "reward",
    "done",
    "all_wheels_on_track",
    "progress",
    "closest_waypoint",
    "track_len",
    "tstamp",
    "episode_status",
    "pause_duration",
)
# Newer simulators (deepracer-on-aws, simapp 5+) append these.
EXTENDED_COLUMNS: tuple[str, ...] = (*BASE_COLUMNS, "obstacle_crash_counter", "wall_clock")

# Status words as they appear in simtraces (metrics files use other spellings).
EPISODE_STATUSES: tuple[str, ...] = (
    "prepare",
    "in_progress",
    "pause",
    "lap_complete",
    "off_track",
    "crashed",
    "immobilized",
    "reversed",
    "time_up",
)


@dataclass(frozen=True, slots=True)
class SimtraceRow:
    episode: int
    steps: float  # DeepRacer's step counter: 1.0 is the prepare step
    x: float  # the reward params' x, y: the reference point ahead of the car origin
    y: float
    yaw: float  # degrees in the files we write (older simulators used other units)
    steer: float  # degrees
    throttle: float  # m/s
    action: int  # action index; -1 for continuous action spaces
    reward: float
    done: bool
    all_wheels_on_track: bool
    progress: float
    closest_waypoint: int
    track_len: float
    tstamp: float  # simulation time, seconds
    episode_status: str
    pause_duration: float
    obstacle_crash_counter: int | None = None
    wall_clock: float | None = None


def _float(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"simtrace values must be finite, got {value!r}")
    return repr(float(value))


def format_row(row: SimtraceRow, extended: bool = True) -> list[str]:
    """The CSV fields of ``row`` in column order."""
    if not row.episode_status or any(c in row.episode_status for c in ',"\r\n'):
        raise ValueError(f"episode_status: unusable value {row.episode_status!r}")
    fields = [
        str(int(row.episode)),
        _float(row.steps),
        _float(row.x),
        _float(row.y),
        _float(row.yaw),
        _float(row.steer),
        _float(row.throttle),
        str(int(row.action)),
        _float(row.reward),
        str(bool(row.done)),
        str(bool(row.all_wheels_on_track)),
        _float(row.progress),
        str(int(row.closest_waypoint)),
        _float(row.track_len),
        _float(row.tstamp),
        row.episode_status,
        _float(row.pause_duration),
    ]
    if extended:
        fields.append(str(int(row.obstacle_crash_counter or 0)))
        # left empty when unknown: deepracer-utils reads that as "no wall clock", not as 1970
        fields.append(_float(row.wall_clock) if row.wall_clock is not None else "")
    return fields


class SimtraceWriter:
    """Writes a header, then one line per row, to a text stream opened with ``newline=""``."""

    def __init__(self, stream: TextIO, extended: bool = True) -> None:
        self._writer = csv.writer(stream, lineterminator="\n")
        self._extended = extended
        self._writer.writerow(EXTENDED_COLUMNS if extended else BASE_COLUMNS)

    def write(self, row: SimtraceRow) -> None:
        self._writer.writerow(format_row(row, self._extended))

    def write_rows(self, rows: Iterable[SimtraceRow]) -> None:
        for row in rows:
            self.write(row)


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise ValueError(f"expected True or False, got {text!r}")


def _parse_int(text: str) -> int:
    value = float(text)
    if not value.is_integer():
        raise ValueError(f"expected a whole number, got {text!r}")
    return int(value)


def iter_simtrace(stream: TextIO) -> Iterator[SimtraceRow]:
    """Rows of a simtrace CSV (columns matched by header name, in any order)."""
    reader = csv.DictReader(stream)
    header = reader.fieldnames or []
    missing = [c for c in BASE_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"simtrace header: missing columns {', '.join(missing)}")
    has_crash = "obstacle_crash_counter" in header
    has_clock = "wall_clock" in header
    for line, rec in enumerate(reader, start=2):
        column = ""
        try:
            column = "episode"
            episode = _parse_int(rec["episode"])
            column = "steps"
            steps = float(_parse_int(rec["steps"]))  # a whole number, written as a float
            column = "action"
            action = _parse_int(rec["action"])
            column = "done"
            done = _parse_bool(rec["done"])
            column = "all_wheels_on_track"
            on_track = _parse_bool(rec["all_wheels_on_track"])
            column = "closest_waypoint"
            closest = _parse_int(rec["closest_waypoint"])
            floats = {}
            for column in (
                "X", "Y", "yaw", "steer", "throttle", "reward", "progress", "track_len",
                "tstamp", "pause_duration",
            ):  # fmt: skip
                floats[column] = float(rec[column])
            column = "obstacle_crash_counter"
            crashes = _parse_int(rec[column]) if has_crash else None
            column = "wall_clock"
            clock = float(rec[column]) if has_clock and rec[column] != "" else None
            column = "episode_status"
            status = rec[column]
            if not status:
                raise ValueError("empty")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"simtrace line {line}, column {column}: {exc}") from None
        yield SimtraceRow(
            episode=episode,
            steps=steps,
            x=floats["X"],
            y=floats["Y"],
            yaw=floats["yaw"],
            steer=floats["steer"],
            throttle=floats["throttle"],
            action=action,
            reward=floats["reward"],
            done=done,
            all_wheels_on_track=on_track,
            progress=floats["progress"],
            closest_waypoint=closest,
            track_len=floats["track_len"],
            tstamp=floats["tstamp"],
            episode_status=status,
            pause_duration=floats["pause_duration"],
            obstacle_crash_counter=crashes,
            wall_clock=clock,
        )


def read_simtrace(source: TextIO | str | Path) -> list[SimtraceRow]:
    """All rows of a simtrace CSV given as an open text stream or a file path."""
    if isinstance(source, (str, Path)):
        with open(source, newline="", encoding="utf-8") as stream:
            return list(iter_simtrace(stream))
    return list(iter_simtrace(source))
