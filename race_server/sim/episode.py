"""Episode rules: start positions, termination, evaluation resets and penalties, lap timing.

``Simulation`` ties one ``World`` to a track and its objects and runs DeepRacer's episode logic
step by step; it knows nothing about observations or rewards (``env.py`` adds those).

Termination is checked in SPEC order: lap complete, crashed, off track, immobilised, reversed,
time up, step limit. In evaluation mode an off-track / reversed / immobilised / crashed step with
resets left becomes a penalty pause (the car is held still, the pause counts in the lap time) and
a re-placement instead of the end of the episode.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from race_server.sim.car import CarSpec, ObjectSlot
from race_server.sim.objects import BOT_PENALTY_SECONDS, CRASH_CAR, ObjectsConfig, TrackObjects, rectangle
from race_server.sim.params import (
    ObjectState,
    ProgressTracker,
    build_params,
    closest_objects,
    collided_objects,
    object_in_camera,
    split_bot_collisions,
    waypoint_list,
)
from race_server.sim.tracks import Track, load_track
from race_server.sim.world import REFERENCE_OFFSET, World

# status words: simtrace word -> metrics word
LAP_COMPLETE = "lap_complete"
CRASHED = "crashed"
OFF_TRACK = "off_track"
IMMOBILIZED = "immobilized"
REVERSED = "reversed"
TIME_UP = "time_up"
IN_PROGRESS = "in_progress"
PAUSE = "pause"
PREPARE = "prepare"
METRICS_STATUS = {
    LAP_COMPLETE: "Lap complete",
    CRASHED: "Crashed",
    OFF_TRACK: "Off track",
    IMMOBILIZED: "Immobilized",
    REVERSED: "Reversed",
    TIME_UP: "Time up",
    IN_PROGRESS: "In progress",
    PAUSE: "Pause",
    PREPARE: "Prepare",
}
TRUNCATING = frozenset({TIME_UP})
START_CLEARANCE = 1.0  # m: a training start this close to an object moves to the other lane

MODES = ("training", "evaluation")


@dataclass(frozen=True)
class EpisodeConfig:
    """How episodes run. ``resets=None`` means unlimited resets (evaluation only)."""

    mode: str = "training"
    max_steps: int = 10_000
    time_limit: float | None = None  # sim seconds (virtual events: 180)
    immobile_steps: int = 15
    immobile_distance: float = 0.0003
    reversed_steps: int = 15
    start_advance_pct: float = 5.0  # training round-robin start advance per episode
    alternate_direction: bool = False
    continuous_laps: bool = False  # evaluation: laps back to back in one episode
    max_laps: int | None = None  # evaluation with continuous laps: stop after this many laps
    resets: int | None = None  # evaluation: number of resets allowed (None = unlimited, 0 = none)
    off_track_penalty: float = 3.0
    collision_penalty: float = 3.0
    control_hz: float = 15.0
    substeps: int = 8

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode = {self.mode!r}; allowed: {', '.join(MODES)}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.time_limit is not None and self.time_limit <= 0:
            raise ValueError(f"time_limit must be > 0 seconds or None, got {self.time_limit}")
        for name in ("off_track_penalty", "collision_penalty"):
            value = getattr(self, name)
            if not 0.0 <= value <= 30.0:
                raise ValueError(f"{name} = {value}; allowed 0-30 seconds")
        if self.resets is not None and self.resets < 0:
            raise ValueError(f"resets must be >= 0 or None (unlimited), got {self.resets}")
        if self.max_laps is not None and self.max_laps < 1:
            raise ValueError(f"max_laps must be >= 1 or None, got {self.max_laps}")
        if not 0.0 <= self.start_advance_pct < 100.0:
            raise ValueError(f"start_advance_pct = {self.start_advance_pct}; allowed 0-100")


@dataclass
class EpisodeMetrics:
    """Per-episode counters, the DeepRacer metrics fields."""

    episode: int = 0
    steps: int = 0
    progress: float = 0.0
    status: str = IN_PROGRESS
    laps: list[float] = field(default_factory=list)  # completed lap times, seconds
    crash_count: int = 0
    immobilized_count: int = 0
    off_track_count: int = 0
    reversed_count: int = 0
    reset_count: int = 0
    start_time: float = 0.0
    sim_time: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "episode": self.episode,
            "steps": self.steps,
            "completion_percentage": self.progress,
            "episode_status": METRICS_STATUS[self.status],
            "lap_times": list(self.laps),
            "crash_count": self.crash_count,
            "immobilized_count": self.immobilized_count,
            "off_track_count": self.off_track_count,
            "reversed_count": self.reversed_count,
            "reset_count": self.reset_count,
            "elapsed_time_in_milliseconds": round(self.sim_time * 1000.0),
        }


@dataclass(frozen=True)
class StepOutcome:
    params: dict[str, Any]
    status: str  # simtrace word for this step
    terminated: bool
    truncated: bool
    pause_duration: float = 0.0
    lap_time: float | None = None  # seconds, when a lap ended on this step


class Simulation:
    """One car on one track with DeepRacer's episode rules."""

    def __init__(
        self,
        route_id: str,
        reverse: bool = False,
        *,
        objects: ObjectsConfig | None = None,
        episode: EpisodeConfig | None = None,
        car: CarSpec | None = None,
        seed: int | np.random.SeedSequence | None = None,
    ) -> None:
        self.route_id = route_id
        self.base_reverse = reverse
        self.tracks = {reverse: load_track(route_id, reverse)}
        self.objects_config = objects or ObjectsConfig()
        self.config = episode or EpisodeConfig()
        self.car = car or CarSpec()
        self.rng = np.random.default_rng(seed)
        self.stereo_camera = False  # object_in_camera tests both lenses of a stereo camera
        self.world: World | None = None
        self.track: Track = self.tracks[reverse]
        self._waypoints: dict[bool, list[tuple[float, float]]] = {}
        self.track_objects: TrackObjects | None = None
        self.episode_index = -1
        self.metrics = EpisodeMetrics()
        self.progress = ProgressTracker(0.0, self.track.is_loop)
        self.last_params: dict[str, Any] = {}
        self._prev_distance = 0.0
        self._static_states: list[ObjectState] = []
        self._reset_counters()

    # ------------------------------------------------------------------ helpers
    def seed(self, seed: int | np.random.SeedSequence | None) -> None:
        self.rng = np.random.default_rng(seed)

    def _reset_counters(self) -> None:
        self.steps = 0
        self.immobile_run = 0
        self.reversed_run = 0
        self.lap_start_time = 0.0
        self.resets_used = 0
        self.last_action = (0.0, 0.0)

    def _track_for_episode(self) -> Track:
        reverse = self.base_reverse
        if self.config.alternate_direction and self.episode_index % 2 == 1:
            reverse = not reverse
        if reverse not in self.tracks:
            self.tracks[reverse] = load_track(self.route_id, reverse)
        return self.tracks[reverse]

    def _ensure_world(self, slots: tuple[ObjectSlot, ...]) -> World:
        if self.world is None or self.world.objects != slots:
            self.world = World(self.car, slots, control_hz=self.config.control_hz, substeps=self.config.substeps)
        return self.world

    def _object_state(self, i: int) -> ObjectState:
        objs = self.track_objects
        assert objs is not None
        box = objs.boxes[i]
        bot = objs.is_bot[i]
        # located like DeepRacer does: the object's centre projected on the centre line
        pos = self.track.locate(box.x, box.y)
        return ObjectState(
            x=float(box.x),
            y=float(box.y),
            projection_distance=float(pos.projection_distance),
            distance_from_center=float(pos.distance_from_center),
            is_left_of_center=bool(pos.is_left_of_center),
            heading=float(objs.headings[i]) if bot else 0.0,
            speed=float(objs.speeds[i]) if bot else 0.0,
            is_bot=bool(bot),
        )

    def _object_states(self) -> list[ObjectState]:
        if self.track_objects is None:
            return []
        n_static = len(self._static_states)
        bots = [self._object_state(i) for i in range(n_static, len(self.track_objects.boxes))]
        return self._static_states + bots

    def _place(self, distance: float, lateral: float) -> None:
        """Put the car at rest with its origin ``distance`` metres along the centre line."""
        assert self.world is not None
        x, y, yaw = self.track.pose_at(distance, lateral)
        self.world.place(x, y, yaw)

    # ------------------------------------------------------------------- reset
    def reset(self) -> StepOutcome:
        self.episode_index += 1
        self.track = self._track_for_episode()
        cfg = self.config
        # training: round-robin starts; evaluation: always the start line
        # (open routes always start at the start: their progress cannot wrap)
        training = cfg.mode == "training" and self.track.is_loop
        start_pct = (self.episode_index * cfg.start_advance_pct) % 100.0 if training else 0.0
        start_distance = start_pct / 100.0 * self.track.length
        if self.objects_config.race_type == "TIME_TRIAL":
            self.track_objects = None
            slots: tuple[ObjectSlot, ...] = ()
        else:
            self.track_objects = TrackObjects(self.track, self.objects_config, self.rng)
            slots = tuple(ObjectSlot(b.length, b.width, b.height) for b in self.track_objects.boxes)
        world = self._ensure_world(slots)
        x, y, yaw = self._start_pose(start_distance, training)
        world.reset(x, y, yaw)
        if self.track_objects is not None:
            world.set_objects(self.track_objects.boxes)
            n_static = sum(1 for b in self.track_objects.is_bot if not b)
            self._static_states = []
            self._static_states = [self._object_state(i) for i in range(n_static)]
        else:
            self._static_states = []
        self._reset_counters()
        # loops: DeepRacer measures the start from the car origin while progress follows the
        # reference point 0.14 m ahead, so progress starts at 100 * 0.14 / L; open routes: from
        # row 0, so that reaching the last row is 100 %
        start = self.track.locate(world.x, world.y).progress if self.track.is_loop else 0.0
        self.progress = ProgressTracker(start, self.track.is_loop)
        self.metrics = EpisodeMetrics(episode=self.episode_index)
        outcome = self._observe(PREPARE, crashed=False, track_progress=None)
        return outcome

    def _start_pose(self, distance: float, training: bool) -> tuple[float, float, float]:
        """The centre line at ``distance``; in training, the lane away from an object standing there."""
        objs = self.track_objects
        if training and objs is not None and objs.boxes:
            length = self.track.length
            gaps = [abs(d - distance) % length for d in objs.distances]
            nearest = min(range(len(gaps)), key=gaps.__getitem__)
            if gaps[nearest] < START_CLEARANCE:
                lane = "outside" if objs.lanes[nearest] == "inside" else "inside"
                return self.track.lane_point(lane, distance)
        return self.track.pose_at(distance, 0.0)

    # -------------------------------------------------------------------- step
    def step(self, steering_deg: float, speed: float, speed_at: Callable[[int], float] | None = None) -> StepOutcome:
        world = self.world
        if world is None:
            raise RuntimeError("call reset() before step()")
        cfg = self.config
        self.last_action = (float(steering_deg), float(speed))
        before_time = world.sim_time
        before_progress = self.progress.prev
        prev_distance = self._prev_distance
        x0, y0 = world.x, world.y
        if self.track_objects is not None:
            self.track_objects.advance(world.control_dt)
            world.set_objects(self.track_objects.boxes)
        world.step(steering_deg, speed, speed_at)
        self.steps += 1
        moved = math.hypot(world.x - x0, world.y - y0)
        rx, ry = world.reference_point()
        position = self.track.locate(rx, ry)
        progress = self.progress.update(position.progress)
        self.immobile_run = self.immobile_run + 1 if moved <= cfg.immobile_distance else 0
        self.reversed_run = self.reversed_run + 1 if progress < before_progress else 0

        objects = self._object_states()
        crashed_idx: list[int] = []
        if objects:
            assert self.track_objects is not None
            car_rect = rectangle(world.x, world.y, world.yaw, *CRASH_CAR)
            collided = collided_objects(car_rect, self.track_objects.crash_rectangles())
            if collided:
                crashed_idx, rear_ended_by = split_bot_collisions(
                    collided,
                    float(position.projection_distance),
                    objects,
                    self.track.length,
                    self.track.is_loop,
                )
                if rear_ended_by and not self.track_objects.bots_paused:
                    self.track_objects.pause_bots(BOT_PENALTY_SECONDS)
        crashed = bool(crashed_idx)
        wheels_in = self.track.contains(world.wheel_centres())
        offtrack = not bool(wheels_in.any())

        lap_time: float | None = None
        status = IN_PROGRESS
        if progress >= 100.0:
            frac = ProgressTracker.crossing_fraction(before_progress, self._uncapped(position.progress))
            crossing = before_time + frac * (world.sim_time - before_time)
            lap_time = crossing - self.lap_start_time
            self.metrics.laps.append(lap_time)
            self.lap_start_time = crossing
            status = LAP_COMPLETE
        elif crashed:
            status = CRASHED
        elif offtrack:
            status = OFF_TRACK
        elif self.immobile_run >= cfg.immobile_steps:
            status = IMMOBILIZED
        elif self.reversed_run >= cfg.reversed_steps:
            status = REVERSED

        outcome = self._observe(
            status,
            crashed=crashed,
            track_progress=position,
            progress=progress,
            objects=objects,
            wheels_in=wheels_in,
            lap_time=lap_time,
        )
        return self._conclude(outcome, crashed_idx, prev_distance)

    def _uncapped(self, track_progress: float) -> float:
        """Relative progress before the 100 cap (for crossing interpolation)."""
        p = track_progress - self.progress.start
        if self.track.is_loop and p < 50.0:
            p += 100.0
        return p

    def _conclude(self, outcome: StepOutcome, crashed_idx: list[int], prev_distance: float) -> StepOutcome:
        cfg = self.config
        status = outcome.status
        world = self.world
        assert world is not None
        m = self.metrics
        terminated = False
        truncated = False
        pause = 0.0
        if status == LAP_COMPLETE:
            more = cfg.mode == "evaluation" and cfg.continuous_laps
            if more and (cfg.max_laps is None or len(m.laps) < cfg.max_laps):
                self.progress.restart(self.progress.start)
                self.reversed_run = 0
                status = IN_PROGRESS
            else:
                terminated = True
        elif status in (CRASHED, OFF_TRACK, IMMOBILIZED, REVERSED):
            counter = {
                CRASHED: "crash_count",
                OFF_TRACK: "off_track_count",
                IMMOBILIZED: "immobilized_count",
                REVERSED: "reversed_count",
            }[status]
            setattr(m, counter, getattr(m, counter) + 1)
            if cfg.mode == "evaluation" and (cfg.resets is None or self.resets_used < cfg.resets):
                pause = cfg.collision_penalty if status == CRASHED else cfg.off_track_penalty
                self._penalty_reset(status, crashed_idx, pause, prev_distance)
                status = PAUSE
            else:
                terminated = True
        out_of_time = cfg.time_limit is not None and world.sim_time >= cfg.time_limit
        if not terminated and (out_of_time or self.steps >= cfg.max_steps):
            status, truncated = TIME_UP, True
        m.steps = self.steps
        m.progress = float(outcome.params["progress"])
        m.sim_time = world.sim_time
        m.status = status if (terminated or truncated) else IN_PROGRESS
        return StepOutcome(
            params=outcome.params,
            status=status,
            terminated=terminated,
            truncated=truncated,
            pause_duration=pause,
            lap_time=outcome.lap_time,
        )

    def _penalty_reset(self, status: str, crashed_idx: list[int], pause: float, prev_distance: float) -> None:
        """Hold the car for the penalty and put it back on the track at rest."""
        world = self.world
        assert world is not None
        track = self.track
        self.resets_used += 1
        self.metrics.reset_count += 1
        world.pause(pause)
        if self.track_objects is not None:
            # the race goes on during the penalty: bots keep driving
            self.track_objects.advance(pause)
            world.set_objects(self.track_objects.boxes)
        inside = track.lane_lateral("inside")
        outside = track.lane_lateral("outside")
        static_crash = [i for i in crashed_idx if self.track_objects is not None and not self.track_objects.is_bot[i]]
        if status == CRASHED and not static_crash:
            # DeepRacer holds the car where it is after a bot collision
            self.immobile_run = 0
            self.reversed_run = 0
            return
        if status == CRASHED:
            box = self._static_states[static_crash[0]]
            box_lane = inside if (box.is_left_of_center == (inside > 0)) else outside
            lateral = outside if box_lane == inside else inside
            distance = box.projection_distance - 1.0 - REFERENCE_OFFSET
        else:
            # the previous step's progress, in the lane nearer to where the car is
            pos = track.locate(*world.reference_point())
            signed = pos.distance_from_center if pos.is_left_of_center else -pos.distance_from_center
            lateral = inside if abs(signed - inside) <= abs(signed - outside) else outside
            distance = prev_distance - REFERENCE_OFFSET
        if track.is_loop:
            distance %= track.length
        else:
            distance = min(max(distance, 0.0), track.length)
        self._place(distance, lateral)
        rx, ry = world.reference_point()
        self.progress.prev = self._relative(track.locate(rx, ry).progress)
        self.immobile_run = 0
        self.reversed_run = 0

    def _relative(self, track_progress: float) -> float:
        """Relative progress for a re-placed car, continuous with the progress before the reset."""
        p = track_progress - self.progress.start
        if self.track.is_loop:
            while p - self.progress.prev > 50.0:
                p -= 100.0
            while self.progress.prev - p > 50.0:
                p += 100.0
        return p

    def _observe(
        self,
        status: str,
        *,
        crashed: bool,
        track_progress: Any,
        progress: float | None = None,
        objects: list[ObjectState] | None = None,
        wheels_in: Any = None,
        lap_time: float | None = None,
    ) -> StepOutcome:
        world = self.world
        assert world is not None
        rx, ry = world.reference_point()
        position = track_progress if track_progress is not None else self.track.locate(rx, ry)
        if progress is None:
            progress = self.progress.update(position.progress)
        if objects is None:
            objects = self._object_states()
        if wheels_in is None:
            wheels_in = self.track.contains(world.wheel_centres())
        key = self.track.reverse
        if key not in self._waypoints:
            self._waypoints[key] = waypoint_list(self.track)
        yaw = world.yaw
        closest = closest_objects(float(position.projection_distance), objects, self.track.length, self.track.is_loop)
        params = build_params(
            ref_x=rx,
            ref_y=ry,
            yaw=yaw,
            position=position,
            progress=progress,
            all_wheels_on_track=bool(wheels_in.all()),
            is_offtrack=not bool(wheels_in.any()),
            is_crashed=crashed,
            is_reversed=self.track.reverse,
            speed=self.last_action[1],
            steering_angle=self.last_action[0],
            steps=float(self.steps),
            track_length=self.track.length,
            waypoints=self._waypoints[key],
            objects=objects,
            objects_closest=closest,
            in_camera=self._next_object_in_camera(objects, closest) if objects else False,
            sim_time=world.sim_time,
        )
        self._prev_distance = float(position.projection_distance)
        self.last_params = params
        return StepOutcome(params=params, status=status, terminated=False, truncated=False, lap_time=lap_time)

    def _next_object_in_camera(self, objects: list[ObjectState], closest: list[int]) -> bool:
        objs = self.track_objects
        world = self.world
        assert objs is not None and world is not None
        i = closest[1]
        box = objs.boxes[i]
        return object_in_camera(
            world.x, world.y, world.yaw, box.crash_corners(), (box.x, box.y), objs.is_bot[i], self.stereo_camera
        )
