"""The DeepRacer reward-function ``params`` dict, built once per step.

Every key of the DeepRacer guide is present on every step with the guide's types (Python ``bool``,
``float``, ``int`` and lists, never numpy scalars), so user reward functions run unchanged.
``waypoints`` is one cached list of ``(x, y)`` tuples per track: building it every step would
dominate the step cost. A reward function gets ``fresh_params``: DeepRacer deep-copies the params
for every call, so a function that pops or edits a list never sees its own earlier changes.
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
    "steps": float,
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
    heading: float  # radians (DeepRacer's objects_heading); 0.0 for boxes
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


def waypoint_list(track: TrackLike) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in track.waypoints[:, :2]]


_LIST_KEYS = (
    "waypoints",
    "closest_waypoints",
    "closest_objects",
    "objects_location",
    "objects_left_of_center",
    "objects_distance",
    "objects_distance_from_center",
    "objects_heading",
    "objects_speed",
)


def fresh_params(params: dict[str, Any]) -> dict[str, Any]:
    """A copy a reward function may change at will: what DeepRacer's ``copy.deepcopy`` gives.

    Every list is new; their items are floats, ints, bools and tuples, which cannot change, so
    copying one level deep is a full deep copy at a fraction of its cost."""
    out = dict(params)
    for key in _LIST_KEYS:
        value = out.get(key)
        if isinstance(value, list):
            out[key] = list(value)
    return out


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


# DeepRacer's camera frustum: lens offset from the car origin (x forward, y left, z up), pitch down,
# horizontal field of view, 4:3 aspect, near and far planes.
CAMERA_OFFSET = (0.14529379, 0.0, 0.13032555)
STEREO_OFFSETS = ((0.14529379, -0.03, 0.13032555), (0.14529379, 0.03, 0.13032555))
CAMERA_PITCH = 0.2618
CAMERA_HFOV = 1.13
CAMERA_ASPECT = 480.0 / 640.0
CAMERA_NEAR, CAMERA_FAR = 0.2, 300.0
OBJECT_Z = {False: 0.1, True: 0.0}  # height DeepRacer tests an object's footprint at: box, bot


def in_frustum(
    car_x: float, car_y: float, car_yaw: float, point: tuple[float, float, float], stereo: bool = False
) -> bool:
    """True when ``point`` lies inside the camera frustum (either lens of a stereo pair)."""
    c, s = math.cos(car_yaw), math.sin(car_yaw)
    cp, sp = math.cos(CAMERA_PITCH), math.sin(CAMERA_PITCH)
    # camera axes: forward pitched down, right, up (world frame)
    fwd = (c * cp, s * cp, -sp)
    right = (s, -c, 0.0)
    up = (c * sp, s * sp, cp)
    tan_h = math.tan(CAMERA_HFOV / 2.0)
    tan_v = tan_h * CAMERA_ASPECT
    for ox, oy, oz in STEREO_OFFSETS if stereo else (CAMERA_OFFSET,):
        cx = car_x + c * ox - s * oy
        cy = car_y + s * ox + c * oy
        dx, dy, dz = point[0] - cx, point[1] - cy, point[2] - oz
        depth = dx * fwd[0] + dy * fwd[1] + dz * fwd[2]
        if not CAMERA_NEAR < depth < CAMERA_FAR:
            continue
        across = dx * right[0] + dy * right[1]
        vertical = dx * up[0] + dy * up[1] + dz * up[2]
        if abs(across) < depth * tan_h and abs(vertical) < depth * tan_v:
            return True
    return False


def object_in_camera(
    car_x: float,
    car_y: float,
    car_yaw: float,
    rectangle: NDArray[np.float64],
    centre: tuple[float, float],
    is_bot: bool,
    stereo: bool = False,
) -> bool:
    """DeepRacer's ``object_in_camera`` test for one object (the next one ahead): any corner of its
    crash rectangle, or its centre, inside the camera frustum."""
    z = OBJECT_Z[is_bot]
    points = [(float(px), float(py), z) for px, py in rectangle]
    points.append((centre[0], centre[1], z))
    return any(in_frustum(car_x, car_y, car_yaw, p, stereo) for p in points)


def point_in_rectangle(px: float, py: float, rect: NDArray[np.float64]) -> bool:
    """Strictly inside a convex quadrilateral given counter-clockwise (shapely's ``contains``)."""
    for i in range(4):
        ax, ay = rect[i]
        bx, by = rect[(i + 1) % 4]
        if (bx - ax) * (py - ay) - (by - ay) * (px - ax) <= 0.0:
            return False
    return True


def collided_objects(car_rect: NDArray[np.float64], object_rects: NDArray[np.float64]) -> list[int]:
    """Objects with a corner of the car's crash rectangle inside their own (DeepRacer's test)."""
    out: list[int] = []
    for i, rect in enumerate(object_rects):
        if any(point_in_rectangle(float(px), float(py), rect) for px, py in car_rect):
            out.append(i)
    return out


def split_bot_collisions(
    collided: Sequence[int], car_distance: float, objects: Sequence[ObjectState], length: float, is_loop: bool
) -> tuple[list[int], list[int]]:
    """(crashes of the car, bots that ran into the car from behind).

    DeepRacer counts a bot collision against the car only when the car is behind the bot; a bot that
    rear-ends the car is stopped for the penalty instead, and the car drives on."""
    crashed: list[int] = []
    rear_ended_by: list[int] = []
    for i in collided:
        o = objects[i]
        if o.is_bot and _signed_gap(car_distance, o.projection_distance, length, is_loop) > 0.0:
            rear_ended_by.append(i)
        else:
            crashed.append(i)
    return crashed, rear_ended_by


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
    steps: float,
    track_length: float,
    waypoints: list[tuple[float, float]],
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
        "steps": float(steps),
        "track_length": float(track_length),
        "track_width": float(position.track_width),
        "waypoints": waypoints,
        "closest_waypoints": [int(prev_wp), int(next_wp)],
        "closest_objects": objects_closest,
        "objects_location": [(o.x, o.y) for o in objects],
        "objects_left_of_center": [o.is_left_of_center for o in objects],
        "objects_distance": [o.projection_distance for o in objects],
        "objects_distance_from_center": [o.distance_from_center for o in objects],
        "objects_heading": [o.heading if o.is_bot else 0.0 for o in objects],
        "objects_speed": [o.speed if o.is_bot else 0.0 for o in objects],
        "object_in_camera": bool(in_camera),
        "sim_time": float(sim_time),
    }
