"""Objects on the track: static obstacle boxes and bot cars (DeepRacer world config).

Sizes
-----
* Obstacle box: the guide gives the AWS DeepRacer package box as 9.5" (L) x 15.25" (W) x 10.5" (H).
  L is taken along the direction of travel, so the 15.25" face is the one an approaching car sees
  and the box blocks about half the road width (0.387 m of a ~0.76 m road): one lane. That is the
  box the car drives into and the cameras see.
* Bot car: the DeepRacer car footprint (0.324 m x 0.196 m), 0.15 m tall.
* Crash rectangles are DeepRacer's, not the physical boxes: 0.5 m (along) x 0.4 m for a box and
  0.422 m x 0.296 m for a car (agent and bots), each with the simulator's buffer; see ``CRASH_BOX``.

Layouts (DeepRacer's rules; all distances are metres of centre line from route row 0)
-------------------------------------------------------------------------------------
* ``object_positions`` given: each box at ``percent`` of the lap, in its lane.
* Otherwise boxes start evenly spaced from ``gap`` to ``L - 1`` m, where ``gap`` is
  ``min_distance_between_obstacles`` PERCENT of the lap (DeepRacer reads the setting as a percent).
  Fixed layouts alternate lanes starting inside. Random layouts move each box, in a random order,
  uniformly between its neighbours' positions plus/minus ``gap`` and pick each box's lane at random.
* Lanes are the lines halfway between the centre line and each border.
* Bots start evenly spaced from 2 m to ``L - 1`` m in alternating lanes starting inside, and drive
  ``bot_speed`` m/s of centre line. With lane changes, each bot waits a time drawn from
  [lower, upper] s, then moves to the other lane over 1 m of travel. A bot that runs into the car
  from behind stops, with every bot, for ``BOT_PENALTY_SECONDS``.

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
LANE_CHANGE_DISTANCE = 1.0  # m of travel a bot's lane change takes
BOT_START_DISTANCE = 2.0  # m from row 0: the first bot
LAYOUT_END_MARGIN = 1.0  # m: the last box or bot stands this far before the end of the centre line
BOT_PENALTY_SECONDS = 2.0  # a bot that rear-ends the car stops this long
# DeepRacer's crash rectangles (along the object's heading, across), buffer included
CRASH_BOX = (0.5, 0.4)
CRASH_CAR = (0.422, 0.296)


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
        return rectangle(self.x, self.y, self.yaw, self.length, self.width)

    def crash_corners(self) -> npt.NDArray[np.float64]:
        """(4, 2) corners of DeepRacer's crash rectangle for this object."""
        length, width = CRASH_CAR if self.is_bot else CRASH_BOX
        return rectangle(self.x, self.y, self.yaw, length, width)


def rectangle(x: float, y: float, yaw: float, length: float, width: float) -> npt.NDArray[np.float64]:
    """(4, 2) corners of a rectangle centred on (x, y), ``length`` along ``yaw``, counter-clockwise."""
    c, s = math.cos(yaw), math.sin(yaw)
    hl, hw = length / 2.0, width / 2.0
    local = np.array([[hl, hw], [-hl, hw], [-hl, -hw], [hl, -hw]])
    out = np.empty((4, 2))
    out[:, 0] = x + c * local[:, 0] - s * local[:, 1]
    out[:, 1] = y + s * local[:, 0] + c * local[:, 1]
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
    distance: float  # metres of centre line from row 0 (unwrapped)
    lane: str  # the lane it drives in, or leaves during a change
    wait: float  # seconds until the next lane change starts
    target: str = ""  # the lane a change heads for; "" = not changing
    change_done: float = 0.0  # metres of the current change driven


def _other(lane: str) -> str:
    return "outside" if lane == "inside" else "inside"


class TrackObjects:
    """One episode's objects: static boxes first, then bots (list order is stable for the episode)."""

    def __init__(self, track: Track, config: ObjectsConfig, rng: np.random.Generator) -> None:
        self.track = track
        self.config = config
        self._rng = rng
        self.boxes: list[Box] = []
        self.is_bot: list[bool] = []
        self.speeds: list[float] = []
        self.headings: list[float] = []  # radians, bots only (boxes 0.0)
        self.distances: list[float] = []  # metres of centre line from row 0, in [0, length)
        self.lanes: list[str] = []
        self._bots: list[_Bot] = []
        self._bot_pause = 0.0  # seconds the bots still stand still (rear-end penalty)
        for distance, lane in self._obstacle_layout():
            self._add_static(distance, lane)
        self._place_bots()

    # -- layout ---------------------------------------------------------------------------------
    def _obstacle_layout(self) -> list[tuple[float, str]]:
        cfg = self.config
        n = cfg.obstacle_count
        length = self.track.length
        if n == 0:
            return []
        if cfg.object_positions:
            return [(percent / 100.0 * length, lane) for percent, lane in cfg.object_positions]
        gap = cfg.min_distance_between_obstacles / 100.0 * length
        first, last = gap, length - LAYOUT_END_MARGIN
        dists = np.linspace(first, last, n)
        if not cfg.randomize_obstacle_locations:
            return [(float(d), LANES[i % 2]) for i, d in enumerate(dists)]
        for i in self._rng.permutation(n):
            lo = first if i == 0 else dists[i - 1] + gap
            hi = last if i == n - 1 else dists[i + 1] - gap
            if lo < hi:
                dists[i] = self._rng.uniform(lo, hi)
        return [(float(d), LANES[int(self._rng.integers(0, 2))]) for d in dists]

    def _add_static(self, distance: float, lane: str) -> None:
        d = self._wrap(distance)
        x, y, heading = self.track.lane_point(lane, d)
        self.boxes.append(Box(x, y, heading, BOX_LENGTH, BOX_WIDTH, BOX_HEIGHT))
        self.is_bot.append(False)
        self.speeds.append(0.0)
        self.headings.append(0.0)
        self.distances.append(d)
        self.lanes.append(lane)

    def _place_bots(self) -> None:
        cfg = self.config
        n = cfg.bot_count
        if n == 0:
            return
        starts = np.linspace(BOT_START_DISTANCE, self.track.length - LAYOUT_END_MARGIN, n)
        for i, start in enumerate(starts):
            bot = _Bot(distance=float(start), lane=LANES[i % 2], wait=self._draw_wait())
            self._bots.append(bot)
            self.boxes.append(self._bot_box(bot))
            self.is_bot.append(True)
            self.speeds.append(cfg.bot_speed)
            self.headings.append(0.0)
            self.distances.append(0.0)
            self.lanes.append(bot.lane)
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
    def pause_bots(self, seconds: float) -> None:
        """Stop every bot for ``seconds`` of sim time (DeepRacer's penalty for rear-ending the car)."""
        self._bot_pause += max(float(seconds), 0.0)

    @property
    def bots_paused(self) -> bool:
        return self._bot_pause > 0.0

    def advance(self, dt: float) -> None:
        """Move every bot ``bot_speed * dt`` metres along the centre line, steering lane changes."""
        if dt < 0.0:
            raise ValueError(f"dt: {dt!r}; allowed values: >= 0")
        held = min(dt, self._bot_pause)
        self._bot_pause -= held
        dt -= held
        if dt <= 0.0 or not self._bots:
            return
        speed = self.config.bot_speed
        travel = speed * dt
        for bot in self._bots:
            if not self.track.is_loop and bot.distance + travel > self.track.length:
                bot.distance = bot.distance + travel - self.track.length  # open routes: restart
            else:
                bot.distance += travel
            if bot.target:
                bot.change_done += travel
                if bot.change_done >= LANE_CHANGE_DISTANCE:
                    bot.lane, bot.target = bot.target, ""
                    bot.wait = self._draw_wait()  # the wait restarts when the change ends
            elif math.isfinite(bot.wait):
                bot.wait -= dt
                if bot.wait <= 0.0:
                    bot.target = _other(bot.lane)
                    bot.change_done = 0.0
        self._refresh_bots()

    def _bot_point(self, bot: _Bot, distance: float, done: float) -> tuple[float, float, float]:
        x, y, heading = self.track.lane_point(bot.lane, self._wrap(distance))
        if not bot.target:
            return x, y, heading
        tx, ty, _ = self.track.lane_point(bot.target, self._wrap(distance))
        u = _blend(done / LANE_CHANGE_DISTANCE)
        return x + (tx - x) * u, y + (ty - y) * u, heading

    def _bot_box(self, bot: _Bot) -> Box:
        x, y, yaw = self._bot_point(bot, bot.distance, bot.change_done)
        if bot.target:
            # during a change the bot points along its path, not along the lane
            step = 0.02
            ax, ay, _ = self._bot_point(bot, bot.distance + step, bot.change_done + step)
            yaw = math.atan2(ay - y, ax - x)
        return Box(x, y, yaw, BOT_LENGTH, BOT_WIDTH, BOT_HEIGHT, is_bot=True)

    def _refresh_bots(self) -> None:
        first = len(self.boxes) - len(self._bots)
        for k, bot in enumerate(self._bots):
            box = self._bot_box(bot)
            i = first + k
            self.boxes[i] = box
            self.headings[i] = math.atan2(math.sin(box.yaw), math.cos(box.yaw))
            self.distances[i] = self._wrap(bot.distance)
            self.lanes[i] = bot.target or bot.lane

    def is_changing_lane(self, index: int) -> bool:
        """True while object ``index`` (a bot) is between lanes."""
        first = len(self.boxes) - len(self._bots)
        return index >= first and bool(self._bots[index - first].target)

    def footprints(self) -> npt.NDArray[np.float64]:
        """(K, 4, 2) footprint corners of every object (the physical boxes)."""
        if not self.boxes:
            return np.zeros((0, 4, 2))
        return np.stack([b.corners() for b in self.boxes])

    def crash_rectangles(self) -> npt.NDArray[np.float64]:
        """(K, 4, 2) DeepRacer crash-rectangle corners of every object."""
        if not self.boxes:
            return np.zeros((0, 4, 2))
        return np.stack([b.crash_corners() for b in self.boxes])


def _blend(u: float) -> float:
    """Cosine ease from 0 (u=0) to 1 (u=1): zero slope at both ends."""
    return (1.0 - math.cos(math.pi * min(max(u, 0.0), 1.0))) / 2.0
