"""DeepRacer tracks: route files, console-style selection and per-step track geometry.

Indices and lengths follow the raw rows of the route files (see SPEC "Tracks"): repeated rows
and the closing row are kept because reward functions hard-code waypoint indices.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import Polygon

from race_server.sim.geometry import FloatArray, Polyline, signed_area

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "tracks"
ROUTES_DIR = DATA_DIR / "routes"
DIRECTIONS = ("CLOCKWISE", "COUNTER_CLOCKWISE")
LANES = ("inside", "outside")


@dataclass(frozen=True)
class TrackPosition:
    progress: float  # 0-100 along the centre line from the start line (row 0), NOT episode-relative
    projection_distance: float  # metres along the centre line from row 0
    closest_waypoints: tuple[int, int]  # [prev, next] raw-row indices (SPEC bisect_right rule)
    distance_from_center: float
    is_left_of_center: bool
    track_width: float
    heading: float  # track direction at the projection, degrees (-180, 180]
    sector: int  # 0..n_sectors-1


@dataclass(frozen=True)
class TrackInfo:
    """One console track from tracks.json, with lengths measured from its route files."""

    track_id: str
    name: str
    description: str
    difficulty: int
    disabled: bool
    default_direction: str
    enabled_directions: tuple[str, ...]
    length: float  # centre line of the default direction's route, metres
    width: float  # median road width of that route, metres


def _degrees(rad: float) -> float:
    deg = math.degrees(rad)
    return deg + 360.0 if deg <= -180.0 else deg


class Track:
    """A route driven as stored or reversed, with everything the simulator asks of it."""

    def __init__(self, route_id: str, rows: FloatArray, reverse: bool = False, n_sectors: int = 3) -> None:
        if rows.ndim != 2 or rows.shape[1] != 6 or len(rows) < 2:
            raise ValueError(f"rows: expected an (N>=2, 6) array, got shape {rows.shape}")
        if n_sectors < 1:
            raise ValueError(f"n_sectors: must be >= 1, got {n_sectors}")
        ordered = np.array(rows[::-1] if reverse else rows, dtype=np.float64)
        self.route_id = route_id
        self.reverse = reverse
        self.n_sectors = n_sectors
        self.is_loop = bool(np.array_equal(ordered[0], ordered[-1]))
        self.waypoints: FloatArray = _frozen(ordered[:, 0:2])
        self.inner_border: FloatArray = _frozen(ordered[:, 2:4])
        self.outer_border: FloatArray = _frozen(ordered[:, 4:6])
        self.inner_lane: FloatArray = _frozen((ordered[:, 0:2] + ordered[:, 2:4]) / 2.0)
        self.outer_lane: FloatArray = _frozen((ordered[:, 0:2] + ordered[:, 4:6]) / 2.0)

        self._centre = Polyline(self.waypoints)
        self._lane_lines: dict[str, Polyline] | None = None
        self._inner = Polyline(self.inner_border)
        self._outer = Polyline(self.outer_border)
        self.length = self._centre.length
        self.width = float(np.median(np.hypot(*(self.inner_border - self.outer_border).T)))
        self.is_clockwise = self._winds_clockwise()
        # Normalised arc length of every raw row; the closing row is exactly 1.0.
        self._ndists: list[float] = (self._centre.cum / self.length).tolist()
        self._n = len(ordered)
        self._sector_len = self.length / n_sectors
        self._seg_heading_deg: list[float] = [_degrees(h) for h in self._centre.seg_heading]

        if self.is_loop:
            polygon = Polygon(self.outer_border, [self.inner_border])
        else:
            polygon = Polygon(np.vstack((self.outer_border, self.inner_border[::-1])))
        shapely.prepare(polygon)
        self.road_polygon: Polygon = polygon
        self.start_line: tuple[tuple[float, float], tuple[float, float]] = (
            (float(self.inner_border[0, 0]), float(self.inner_border[0, 1])),
            (float(self.outer_border[0, 0]), float(self.outer_border[0, 1])),
        )

    def _winds_clockwise(self) -> bool:
        if self.is_loop:
            return signed_area(self.waypoints) < 0.0
        # An open route has no winding; call it clockwise when the inner border is on the right,
        # which is what winding means for a loop's inner border.
        dx, dy = self.waypoints[-1] - self.waypoints[0]
        ix, iy = self.inner_border.mean(axis=0) - self.waypoints.mean(axis=0)
        return bool(dx * iy - dy * ix < 0.0)

    @property
    def is_reversed(self) -> bool:
        return self.reverse

    def locate(self, x: float, y: float) -> TrackPosition:
        # numpy scalars would make every step of the pure-Python projection several times slower.
        x = float(x)
        y = float(y)
        along, seg, _, _, d2 = self._centre.project(x, y)
        ndist = along / self.length
        nxt = bisect_right(self._ndists, ndist)
        prv = nxt - 1
        if nxt >= self._n:
            if self.is_loop:
                nxt = 0
            else:
                nxt, prv = self._n - 1, self._n - 2
        _, _, ix, iy, inner_d2 = self._inner.project(x, y)
        _, _, ox, oy, outer_d2 = self._outer.project(x, y)
        return TrackPosition(
            progress=100.0 * ndist,
            projection_distance=along,
            closest_waypoints=(prv, nxt),
            distance_from_center=math.sqrt(d2),
            is_left_of_center=(inner_d2 < outer_d2) != self.is_clockwise,
            track_width=math.hypot(ix - ox, iy - oy),
            heading=self._seg_heading_deg[seg],
            sector=min(int(along / self._sector_len), self.n_sectors - 1),
        )

    def contains(self, points: NDArray[np.float64]) -> NDArray[np.bool_]:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        inside: NDArray[np.bool_] = shapely.contains_xy(self.road_polygon, pts[:, 0], pts[:, 1])
        return inside

    def pose_at(self, distance: float, lateral: float = 0.0) -> tuple[float, float, float]:
        d = float(distance) % self.length if self.is_loop else float(distance)
        lateral = float(lateral)
        x, y, heading = self._centre.interpolate(d)
        return x - lateral * math.sin(heading), y + lateral * math.cos(heading), heading

    def lane_point(self, lane: str, distance: float) -> tuple[float, float, float]:
        """(x, y, heading) on a lane line at ``distance`` metres of centre line from row 0.

        DeepRacer's lanes are the lines halfway between the centre line and each border; an object
        "at distance d in a lane" is the lane line's point nearest the centre line's point at d."""
        if lane not in LANES:
            raise ValueError(f"lane: {lane!r} is not one of {', '.join(LANES)}")
        lines = self._lane_lines
        if lines is None:
            lines = self._lane_lines = {"inside": Polyline(self.inner_lane), "outside": Polyline(self.outer_lane)}
        line = lines[lane]
        d = float(distance) % self.length if self.is_loop else float(distance)
        cx, cy, _ = self._centre.interpolate(d)
        along = line.project(cx, cy)[0]
        return line.interpolate(along)

    def lane_lateral(self, lane: str) -> float:
        if lane not in LANES:
            raise ValueError(f"lane: {lane!r} is not one of {', '.join(LANES)}")
        # The inner border is on the left exactly when the track winds counter-clockwise.
        inside = self.width / 4.0 if not self.is_clockwise else -self.width / 4.0
        return inside if lane == "inside" else -inside

    def sector_of(self, distance: float) -> int:
        d = distance % self.length if self.is_loop else min(max(distance, 0.0), self.length)
        return min(int(d / self._sector_len), self.n_sectors - 1)

    def sector_bounds(self) -> list[float]:
        """Distances (m) from the start line where sectors begin, plus the lap length."""
        return [self._sector_len * k for k in range(self.n_sectors)] + [self.length]

    def __repr__(self) -> str:
        return f"Track({self.route_id!r}, reverse={self.reverse}, length={self.length:.3f}, n_sectors={self.n_sectors})"


def _frozen(array: FloatArray) -> FloatArray:
    out = np.ascontiguousarray(array, dtype=np.float64)
    out.setflags(write=False)
    return out


@cache
def list_routes() -> tuple[str, ...]:
    """Every route id (route file name) shipped with the package."""
    return tuple(sorted(p.stem for p in ROUTES_DIR.glob("*.npy")))


def _check_route(route_id: str) -> None:
    if route_id not in list_routes():
        raise ValueError(f"route_id: unknown route {route_id!r}; allowed values: {', '.join(list_routes())}")


@cache
def load_route_rows(route_id: str) -> FloatArray:
    """The route file's raw (N, 6) rows as stored."""
    _check_route(route_id)
    rows: FloatArray = np.load(ROUTES_DIR / f"{route_id}.npy", allow_pickle=False)
    if rows.ndim != 2 or rows.shape[1] != 6:
        raise ValueError(f"route file {route_id}.npy: expected (N, 6), got {rows.shape}")
    rows = rows.astype(np.float64, copy=False)
    rows.setflags(write=False)
    return rows


@lru_cache(maxsize=64)
def load_track(route_id: str, reverse: bool = False, n_sectors: int = 3) -> Track:
    """A shared, cached Track; treat it as read-only."""
    return Track(route_id, load_route_rows(route_id), reverse=reverse, n_sectors=n_sectors)


@cache
def _catalogue() -> dict[str, dict[str, Any]]:
    with (DATA_DIR / "tracks.json").open(encoding="utf-8") as f:
        tracks: list[dict[str, Any]] = json.load(f)["tracks"]
    return {t["trackId"]: t for t in tracks}


def resolve_track(track_id: str, direction: str) -> tuple[str, bool]:
    """Console track id + CLOCKWISE/COUNTER_CLOCKWISE -> (route_id, reverse)."""
    catalogue = _catalogue()
    entry = catalogue.get(track_id)
    if entry is None:
        raise ValueError(f"track_id: unknown track {track_id!r}; allowed values: {', '.join(sorted(catalogue))}")
    enabled: list[str] = entry["enabledDirections"]
    wanted = str(direction).upper()
    if wanted not in enabled:
        raise ValueError(
            f"direction: {direction!r} is not enabled for track {track_id!r}; allowed values: {', '.join(enabled)}"
        )
    variant = f"{track_id}_cw" if wanted == "CLOCKWISE" else f"{track_id}_ccw"
    if variant in list_routes():
        return variant, False
    _check_route(track_id)
    rows = load_route_rows(track_id)
    stored_clockwise = signed_area(rows[:, 0:2]) < 0.0
    return track_id, stored_clockwise != (wanted == "CLOCKWISE")


def load_console_track(track_id: str, direction: str | None = None, n_sectors: int = 3) -> Track:
    """Track for a console-style selection; ``direction`` defaults to the track's default."""
    if direction is None:
        entry = _catalogue().get(track_id)
        direction = entry["defaultDirection"] if entry is not None else "COUNTER_CLOCKWISE"
    route_id, reverse = resolve_track(track_id, direction)
    return load_track(route_id, reverse, n_sectors)


def list_tracks() -> list[TrackInfo]:
    """Console tracks in tracks.json order."""
    return list(_track_infos())


@cache
def _track_infos() -> tuple[TrackInfo, ...]:
    infos = []
    for track_id, entry in _catalogue().items():
        route_id, _ = resolve_track(track_id, entry["defaultDirection"])
        rows = load_route_rows(route_id)
        centre = rows[:, 0:2]
        widths = np.hypot(*(rows[:, 2:4] - rows[:, 4:6]).T)
        infos.append(
            TrackInfo(
                track_id=track_id,
                name=entry["name"],
                description=entry["description"],
                difficulty=int(entry["difficulty"]),
                disabled=bool(entry.get("disabled", False)),
                default_direction=entry["defaultDirection"],
                enabled_directions=tuple(entry["enabledDirections"]),
                length=float(np.sum(np.hypot(*np.diff(centre, axis=0).T))),
                width=float(np.median(widths)),
            )
        )
    return tuple(infos)
