"""Objects on the track: static obstacle boxes and bot cars (DeepRacer world config).

Sizes
-----
* Obstacle box: the guide gives the AWS DeepRacer package box as 9.5" (L) x 15.25" (W) x 10.5" (H).
  L is taken along the direction of travel, so the 15.25" face is the one an approaching car sees
  and the box blocks about half the road width (0.387 m of a ~0.76 m road): one lane.
* Bot car: the DeepRacer car footprint used for crash tests (0.324 m x 0.196 m), 0.15 m tall.

Layouts
-------
* Fixed (``randomize_obstacle_locations=False``): each box sits on the lane centre of its lane at
  ``percent`` of the lap measured from the start line (row 0). Without ``object_positions`` the
  boxes are spread evenly, at 100*(i+1)/(n+1) %, alternating outside / inside lanes.
* Random: per episode, distances are drawn uniformly among layouts that keep
  ``min_distance_between_obstacles`` metres between neighbours, inside the 7-90 % window of the lap
  counted from the episode's start distance (so never on the start area). Lanes alternate, from a
  random first lane, so two boxes never close both lanes side by side.
* Bots start evenly spaced around the lap ahead of the start distance, each in a random lane, and
  advance ``bot_speed * dt`` metres of centre line per ``advance(dt)``. With lane changes, each bot
  waits a time drawn from [lower, upper] s, then moves to the other lane along a cosine blend of its
  lateral offset over ``max(1 s, 1 m)`` of travel; the wait restarts when the change ends.

All randomness comes from the generator passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from race_server.sim.tracks import Track

INCH = 0.0254
BOX_LENGTH = 9.5 * INCH  # along the track
BOX_WIDTH = 15.25 * INCH  # across the track
BOX_HEIGHT = 10.5 * INCH
BOT_LENGTH = 0.324
BOT_WIDTH = 0.196
BOT_HEIGHT = 0.15

RACE_TYPES = ("TIME_TRIAL", "OBJECT_AVOIDANCE", "HEAD_TO_BOT")
LANES = ("inside", "outside")
MAX_OBJECTS = 6
MIN_PERCENT, MAX_PERCENT = 7.0, 90.0
MIN_BOT_SPEED, MAX_BOT_SPEED = 0.2, 6.0
MIN_LANE_CHANGE_TIME, MAX_LANE_CHANGE_TIME = 1.0, 8.0
LANE_CHANGE_MIN_TIME = 1.0  # s: a lane change lasts at least this long ...
LANE_CHANGE_MIN_DISTANCE = 1.0  # m: ... and covers at least this much track


@dataclass(frozen=True)
class Box:
    """An object's footprint: an oriented box standing on the ground (length along ``yaw``)."""

    x: float
    y: float
    yaw: float
    length: float
    width: float
    height: float
    is_bot: bool = False  # bots are drawn as cars, boxes as cardboard

    def corners(self) -> npt.NDArray[np.float64]:
        """(4, 2) footprint corners, counter-clockwise."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        hl, hw = self.length / 2.0, self.width / 2.0
        local = np.array([[hl, hw], [-hl, hw], [-hl, -hw], [hl, -hw]])
        out = np.empty((4, 2))
        out[:, 0] = self.x + c * local[:, 0] - s * local[:, 1]
        out[:, 1] = self.y + s * local[:, 0] + c * local[:, 1]
        return out


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    if not (lo <= value <= hi) or math.isnan(value):
        raise ValueError(f"{name}: {value!r} is out of range; allowed values: {lo:g} to {hi:g}")


@dataclass(frozen=True)
class ObjectsConfig:
    """DeepRacer world config for objects. Counts for the other race types are accepted and ignored."""

    race_type: str = "TIME_TRIAL"
    number_of_obstacles: int = 0
    randomize_obstacle_locations: bool = True
    object_positions: tuple[tuple[float, str], ...] = ()
    min_distance_between_obstacles: float = 2.0
    number_of_bots: int = 0
    bot_speed: float = 0.2
    is_lane_change: bool = False
    lower_lane_change_time: float = 3.0
    upper_lane_change_time: float = 5.0

    def __post_init__(self) -> None:
        if self.race_type not in RACE_TYPES:
            raise ValueError(f"race_type: {self.race_type!r} is not one of {', '.join(RACE_TYPES)}")
        low_obstacles = 1 if self.race_type == "OBJECT_AVOIDANCE" else 0
        low_bots = 1 if self.race_type == "HEAD_TO_BOT" else 0
        _check_range("number_of_obstacles", self.number_of_obstacles, low_obstacles, MAX_OBJECTS)
        _check_range("number_of_bots", self.number_of_bots, low_bots, MAX_OBJECTS)
        _check_range("bot_speed", self.bot_speed, MIN_BOT_SPEED, MAX_BOT_SPEED)
        _check_range("lower_lane_change_time", self.lower_lane_change_time, MIN_LANE_CHANGE_TIME, MAX_LANE_CHANGE_TIME)
        _check_range("upper_lane_change_time", self.upper_lane_change_time, MIN_LANE_CHANGE_TIME, MAX_LANE_CHANGE_TIME)
        if self.lower_lane_change_time > self.upper_lane_change_time:
            raise ValueError(
                f"lower_lane_change_time: {self.lower_lane_change_time:g} must be <= "
                f"upper_lane_change_time ({self.upper_lane_change_time:g})"
            )
        if not (self.min_distance_between_obstacles >= 0.0):
            raise ValueError(
                f"min_distance_between_obstacles: {self.min_distance_between_obstacles!r}; allowed values: >= 0"
            )
        for i, pos in enumerate(self.object_positions):
            if len(pos) != 2:
                raise ValueError(f"object_positions[{i}]: expected (percent, lane), got {pos!r}")
            percent, lane = pos
            _check_range(f"object_positions[{i}] percent", float(percent), MIN_PERCENT, MAX_PERCENT)
            if lane not in LANES:
                raise ValueError(f"object_positions[{i}] lane: {lane!r} is not one of {', '.join(LANES)}")
        fixed = self.race_type == "OBJECT_AVOIDANCE" and not self.randomize_obstacle_locations
        if fixed and self.object_positions and len(self.object_positions) != self.number_of_obstacles:
            raise ValueError(
                f"object_positions: {len(self.object_positions)} positions given for "
                f"number_of_obstacles={self.number_of_obstacles}; allowed values: exactly one per obstacle"
            )

    @property
    def obstacle_count(self) -> int:
        return self.number_of_obstacles if self.race_type == "OBJECT_AVOIDANCE" else 0

    @property
    def bot_count(self) -> int:
        return self.number_of_bots if self.race_type == "HEAD_TO_BOT" else 0


@dataclass
class _Bot:
    distance: float  # metres of centre line from the start line (unwrapped)
    lateral: float  # current offset, left positive
    lane: str  # lane it is in, or heading for during a change
    wait: float  # seconds until the next lane change starts
    change_from: float = 0.0
    change_to: float = 0.0
    change_length: float = 0.0  # metres of travel the current change takes; 0 = not changing
    change_done: float = 0.0


def _other(lane: str) -> str:
    return "outside" if lane == "inside" else "inside"


class TrackObjects:
    """One episode's objects: static boxes first, then bots (list order is stable for the episode)."""

    def __init__(
        self, track: Track, config: ObjectsConfig, rng: np.random.Generator, start_distance: float = 0.0
    ) -> None:
        self.track = track
        self.config = config
        self._rng = rng
        self.boxes: list[Box] = []
        self.is_bot: list[bool] = []
        self.speeds: list[float] = []
        self.headings_deg: list[float] = []
        self.distances: list[float] = []  # metres of centre line from the start line, in [0, length)
        self.laterals: list[float] = []  # offset from the centre line, left positive
        self._bots: list[_Bot] = []
        for distance, lane in self._obstacle_layout(start_distance):
            self._add_static(distance, lane)
        self._place_bots(start_distance)

    # -- layout ---------------------------------------------------------------------------------
    def _obstacle_layout(self, start_distance: float) -> list[tuple[float, str]]:
        cfg = self.config
        n = cfg.obstacle_count
        length = self.track.length
        if n == 0:
            return []
        if not cfg.randomize_obstacle_locations:
            positions = cfg.object_positions or tuple((100.0 * (i + 1) / (n + 1), LANES[(i + 1) % 2]) for i in range(n))
            return [(percent / 100.0 * length, lane) for percent, lane in positions]
        lo = MIN_PERCENT / 100.0 * length
        span = (MAX_PERCENT - MIN_PERCENT) / 100.0 * length
        spacing = cfg.min_distance_between_obstacles
        slack = span - (n - 1) * spacing
        if slack < 0.0:
            raise ValueError(
                f"min_distance_between_obstacles: {spacing:g} m leaves no room for {n} obstacles on "
                f"{self.track.route_id} ({length:.2f} m); allowed values: <= {span / max(n - 1, 1):.2f}"
            )
        # Sorted uniform offsets plus i*spacing: uniform over all layouts honouring the spacing.
        offsets = np.sort(self._rng.uniform(0.0, slack, size=n))
        first = int(self._rng.integers(0, 2))
        return [(start_distance + lo + float(offsets[i]) + i * spacing, LANES[(first + i) % 2]) for i in range(n)]

    def _add_static(self, distance: float, lane: str) -> None:
        lateral = self.track.lane_lateral(lane)
        d = self._wrap(distance)
        x, y, heading = self.track.pose_at(d, lateral)
        self.boxes.append(Box(x, y, heading, BOX_LENGTH, BOX_WIDTH, BOX_HEIGHT))
        self.is_bot.append(False)
        self.speeds.append(0.0)
        self.headings_deg.append(0.0)
        self.distances.append(d)
        self.laterals.append(lateral)

    def _place_bots(self, start_distance: float) -> None:
        cfg = self.config
        n = cfg.bot_count
        for i in range(n):
            lane = LANES[int(self._rng.integers(0, 2))]
            bot = _Bot(
                distance=start_distance + self.track.length * (i + 1) / (n + 1),
                lateral=self.track.lane_lateral(lane),
                lane=lane,
                wait=self._draw_wait(),
            )
            self._bots.append(bot)
            self.boxes.append(self._bot_box(bot))
            self.is_bot.append(True)
            self.speeds.append(cfg.bot_speed)
            self.headings_deg.append(0.0)
            self.distances.append(0.0)
            self.laterals.append(0.0)
        self._refresh_bots()

    def _draw_wait(self) -> float:
        cfg = self.config
        if not cfg.is_lane_change:
            return math.inf
        return float(self._rng.uniform(cfg.lower_lane_change_time, cfg.upper_lane_change_time))

    def _wrap(self, distance: float) -> float:
        length = self.track.length
        if self.track.is_loop:
            return distance % length
        return min(max(distance, 0.0), length)

    # -- motion ---------------------------------------------------------------------------------
    def advance(self, dt: float) -> None:
        """Move every bot ``bot_speed * dt`` metres along the centre line, steering lane changes."""
        if dt < 0.0:
            raise ValueError(f"dt: {dt!r}; allowed values: >= 0")
        speed = self.config.bot_speed
        for bot in self._bots:
            travel = speed * dt
            if not self.track.is_loop and bot.distance + travel > self.track.length:
                bot.distance = bot.distance + travel - self.track.length  # open routes: restart
            else:
                bot.distance += travel
            remaining = dt
            if bot.change_length > 0.0:
                bot.change_done += travel
                if bot.change_done >= bot.change_length:
                    bot.lateral = bot.change_to
                    bot.change_length = 0.0
                    bot.wait = self._draw_wait()
                    remaining = 0.0  # the wait restarts when the change ends
                else:
                    bot.lateral = _blend(bot.change_from, bot.change_to, bot.change_done / bot.change_length)
                    remaining = 0.0
            if remaining > 0.0 and math.isfinite(bot.wait):
                bot.wait -= remaining
                if bot.wait <= 0.0:
                    bot.lane = _other(bot.lane)
                    bot.change_from = bot.lateral
                    bot.change_to = self.track.lane_lateral(bot.lane)
                    bot.change_length = max(LANE_CHANGE_MIN_DISTANCE, speed * LANE_CHANGE_MIN_TIME)
                    bot.change_done = 0.0
        self._refresh_bots()

    def _lateral_slope(self, bot: _Bot) -> float:
        """d(lateral)/d(distance) of the bot's path (zero outside lane changes)."""
        if bot.change_length <= 0.0:
            return 0.0
        u = bot.change_done / bot.change_length
        return (bot.change_to - bot.change_from) * math.pi / 2.0 * math.sin(math.pi * u) / bot.change_length

    def _bot_box(self, bot: _Bot) -> Box:
        x, y, heading = self.track.pose_at(self._wrap(bot.distance), bot.lateral)
        yaw = heading + math.atan(self._lateral_slope(bot))
        return Box(x, y, yaw, BOT_LENGTH, BOT_WIDTH, BOT_HEIGHT, is_bot=True)

    def _refresh_bots(self) -> None:
        first = len(self.boxes) - len(self._bots)
        for k, bot in enumerate(self._bots):
            box = self._bot_box(bot)
            i = first + k
            self.boxes[i] = box
            deg = math.degrees(math.atan2(math.sin(box.yaw), math.cos(box.yaw)))
            self.headings_deg[i] = 180.0 if deg <= -180.0 else deg
            self.distances[i] = self._wrap(bot.distance)
            self.laterals[i] = bot.lateral

    def is_changing_lane(self, index: int) -> bool:
        """True while object ``index`` (a bot) is between lanes."""
        first = len(self.boxes) - len(self._bots)
        return index >= first and self._bots[index - first].change_length > 0.0

    def footprints(self) -> npt.NDArray[np.float64]:
        """(K, 4, 2) footprint corners of every object, for crash tests."""
        if not self.boxes:
            return np.zeros((0, 4, 2))
        return np.stack([b.corners() for b in self.boxes])


def _blend(a: float, b: float, u: float) -> float:
    """Cosine ease from a (u=0) to b (u=1): zero slope at both ends."""
    return a + (b - a) * (1.0 - math.cos(math.pi * min(max(u, 0.0), 1.0))) / 2.0
