"""The DeepRacer reward-function ``params`` dict, built once per step.

Every key of the DeepRacer guide is present on every step with the guide's types (Python ``bool``,
``float``, ``int`` and lists, never numpy scalars), so user reward functions run unchanged.
``waypoints`` is one cached list per track: building it every step would dominate the step cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

PARAM_TYPES: dict[str, type | tuple[type, ...]] = {
    "all_wheels_on_track": bool,
    "x": float,
    "y": float,
    "heading": float,
    "distance_from_center": float,
    "is_left_of_center": bool,
    "is_offtrack": bool,
    "is_crashed": bool,
    "is_reversed": bool,
    "progress": float,
    "projection_distance": float,
    "speed": float,
    "steering_angle": float,
    "steps": int,
    "track_length": float,
    "track_width": float,
    "waypoints": list,
    "closest_waypoints": list,
    "closest_objects": list,
    "objects_location": list,
    "objects_left_of_center": list,
    "objects_distance": list,
    "objects_distance_from_center": list,
    "objects_heading": list,
    "objects_speed": list,
    "object_in_camera": bool,
    "sim_time": float,
}


class TrackPositionLike(Protocol):
    @property
    def progress(self) -> float: ...
    @property
    def projection_distance(self) -> float: ...
    @property
    def closest_waypoints(self) -> tuple[int, int]: ...
    @property
    def distance_from_center(self) -> float: ...
    @property
    def is_left_of_center(self) -> bool: ...
    @property
    def track_width(self) -> float: ...


class TrackLike(Protocol):
    waypoints: NDArray[np.float64]
    length: float
    is_loop: bool
    reverse: bool

    def locate(self, x: float, y: float) -> Any: ...
    def contains(self, points: NDArray[np.float64]) -> NDArray[np.bool_]: ...


@dataclass(frozen=True)
class ObjectState:
    """One object as the reward params see it (located on the track once per step or episode)."""

    x: float
    y: float
    projection_distance: float
    distance_from_center: float
    is_left_of_center: bool
    heading_deg: float
    speed: float
    is_bot: bool


class ProgressTracker:
    """Episode-relative progress with DeepRacer's wrap rules (see SPEC 'Reward function params')."""

    def __init__(self, start_progress: float, is_loop: bool) -> None:
        self.start = float(start_progress)
        self.is_loop = is_loop
        self.prev = 0.0

    def restart(self, start_progress: float) -> None:
        self.start = float(start_progress)
        self.prev = 0.0

    def update(self, track_progress: float) -> float:
        p = track_progress - self.start
        if self.is_loop:
            if p < 0.0:
                p += 100.0
            if self.prev - p > 50.0:
                p += 100.0
            elif p - self.prev > 50.0:
                p -= 100.0
        p = min(p, 100.0)
        self.prev = p
        return p

    @staticmethod
    def crossing_fraction(before: float, after: float) -> float:
        """Fraction of a step at which relative progress passed 100 (linear between the two)."""
        if after <= before:
            return 1.0
        return min(max((100.0 - before) / (after - before), 0.0), 1.0)


def waypoint_list(track: TrackLike) -> list[list[float]]:
    return [[float(x), float(y)] for x, y in track.waypoints[:, :2]]


def _signed_gap(a: float, b: float, length: float, is_loop: bool) -> float:
    """a - b along the track, wrapped into (-length/2, length/2] on loops."""
    g = a - b
    if is_loop:
        g = (g + length / 2.0) % length - length / 2.0
    return g


def closest_objects(car_distance: float, objects: Sequence[ObjectState], length: float, is_loop: bool) -> list[int]:
    """[behind, ahead] object indices by projected distance; [0, 0] without objects."""
    if not objects:
        return [0, 0]
    ahead_i, behind_i = 0, 0
    best_ahead, best_behind = math.inf, math.inf
    for i, o in enumerate(objects):
        gap = o.projection_distance - car_distance
        if is_loop:
            gap %= length
        if gap >= 0.0 and gap < best_ahead:
            best_ahead, ahead_i = gap, i
        back = car_distance - o.projection_distance
        if is_loop:
            back %= length
        if back >= 0.0 and back < best_behind:
            best_behind, behind_i = back, i
    if best_ahead == math.inf:
        ahead_i = behind_i
    if best_behind == math.inf:
        behind_i = ahead_i
    return [behind_i, ahead_i]


def object_in_camera(
    x: float, y: float, yaw: float, objects: Sequence[ObjectState], hfov: float = 1.13, max_range: float = 10.0
) -> bool:
    """Any object centre inside the camera's horizontal field of view and range."""
    half = hfov / 2.0
    for o in objects:
        dx, dy = o.x - x, o.y - y
        dist = math.hypot(dx, dy)
        if dist > max_range or dist == 0.0:
            continue
        rel = math.atan2(dy, dx) - yaw
        rel = (rel + math.pi) % (2.0 * math.pi) - math.pi
        if abs(rel) <= half:
            return True
    return False


def rectangles_overlap(a: NDArray[np.float64], b: NDArray[np.float64]) -> bool:
    """Separating-axis test for two convex quadrilaterals given as (4, 2) corners."""
    for poly in (a, b):
        for i in range(4):
            ex = poly[(i + 1) % 4, 0] - poly[i, 0]
            ey = poly[(i + 1) % 4, 1] - poly[i, 1]
            nx, ny = -ey, ex
            pa = a[:, 0] * nx + a[:, 1] * ny
            pb = b[:, 0] * nx + b[:, 1] * ny
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


def crashed_objects(
    car_corners: NDArray[np.float64],
    object_corners: NDArray[np.float64],
    touching: frozenset[int],
    car_distance: float,
    objects: Sequence[ObjectState],
    length: float,
    is_loop: bool,
) -> list[int]:
    """Objects the car has crashed into: footprint overlap or chassis contact.

    A bot that runs into the car from behind does not count (DeepRacer clears a bot collision when
    the agent is ahead of the bot)."""
    out: list[int] = []
    for i, o in enumerate(objects):
        if i not in touching and not rectangles_overlap(car_corners, object_corners[i]):
            continue
        if o.is_bot and _signed_gap(car_distance, o.projection_distance, length, is_loop) > 0.0:
            continue
        out.append(i)
    return out


def build_params(
    *,
    ref_x: float,
    ref_y: float,
    yaw: float,
    position: TrackPositionLike,
    progress: float,
    all_wheels_on_track: bool,
    is_offtrack: bool,
    is_crashed: bool,
    is_reversed: bool,
    speed: float,
    steering_angle: float,
    steps: int,
    track_length: float,
    waypoints: list[list[float]],
    objects: Sequence[ObjectState],
    objects_closest: list[int],
    in_camera: bool,
    sim_time: float,
) -> dict[str, Any]:
    """Assemble the params dict (all values plain Python types)."""
    heading = math.degrees(yaw)
    if heading <= -180.0:
        heading += 360.0
    prev_wp, next_wp = position.closest_waypoints
    return {
        "all_wheels_on_track": bool(all_wheels_on_track),
        "x": float(ref_x),
        "y": float(ref_y),
        "heading": float(heading),
        "distance_from_center": float(position.distance_from_center),
        "is_left_of_center": bool(position.is_left_of_center),
        "is_offtrack": bool(is_offtrack),
        "is_crashed": bool(is_crashed),
        "is_reversed": bool(is_reversed),
        "progress": float(progress),
        "projection_distance": float(position.projection_distance),
        "speed": float(speed),
        "steering_angle": float(steering_angle),
        "steps": int(steps),
        "track_length": float(track_length),
        "track_width": float(position.track_width),
        "waypoints": waypoints,
        "closest_waypoints": [int(prev_wp), int(next_wp)],
        "closest_objects": objects_closest,
        "objects_location": [(o.x, o.y) for o in objects],
        "objects_left_of_center": [o.is_left_of_center for o in objects],
        "objects_distance": [o.projection_distance for o in objects],
        "objects_distance_from_center": [o.distance_from_center for o in objects],
        "objects_heading": [o.heading_deg if o.is_bot else 0.0 for o in objects],
        "objects_speed": [o.speed if o.is_bot else 0.0 for o in objects],
        "object_in_camera": bool(in_camera),
        "sim_time": float(sim_time),
    }
