"""The simulator side of one LIVE race: the warm simulation, the race's timing and the run on track.

``LiveSession`` knows no wall clock: the process loop (``race_server.live.child``) calls ``tick()``
15 times per second of real time (or as fast as possible in tests) and the session counts ticks.
Tick ``k`` of a run covers host time ``k/15 .. (k+1)/15`` seconds after Go; negative ``k`` is the
countdown. The simulation's own clock drives timing: lap and sector crossings are interpolated
inside the sim step and penalty pauses advance sim time at once, so the session only steps the
car on ticks where the host clock has caught up with the sim clock; in between the car is held
still (the penalty) while telemetry keeps flowing.

Every event is a dict with ``type``, ``race_id``, ``run_id`` and ``t`` (seconds since Go); types
with a ``race_server.protocol`` message have exactly its fields plus ``t`` (see ``to_protocol``):
countdown {value}, run_started {slot_s} (Go), telemetry, speed, sector, lap, penalty,
attempt_ended. Host-only types: run_end {reason, laps, message} and host_error {message}.
Telemetry also carries ``host``: the policy's command and the applied command of the step, and,
when the driver has a reward function, the step's reward ``params`` (scored after the run).
These are the wire form of ``race_server.live.events`` (the typed union the queue service reads).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from race_server.live.driver import Driver, DriverError, load_driver
from race_server.live.spec import RunEndReason, RunSpec, applied_speed
from race_server.races.ranking import Lap
from race_server.races.timing import FinishReason, RaceTiming, ResetKind, RunTiming
from race_server.sim import episode as ep
from race_server.sim.camera import track_texture
from race_server.sim.episode import EpisodeConfig, Simulation
from race_server.sim.objects import ObjectsConfig

TICK_HZ = 15.0
DT = 1.0 / TICK_HZ
_EPS = 1e-9
Event = dict[str, Any]
_RESET_COUNTERS: tuple[tuple[str, ResetKind], ...] = (
    ("crash_count", "crash"),
    ("off_track_count", "off_track"),
    ("immobilized_count", "immobilised"),
    ("reversed_count", "reversed"),
)
_ENDING_STATUS: dict[str, ResetKind] = {
    ep.CRASHED: "crash",
    ep.OFF_TRACK: "off_track",
    ep.IMMOBILIZED: "immobilised",
    ep.REVERSED: "reversed",
}


@dataclass
class _Run:
    spec: RunSpec
    driver: Driver
    tick: int  # the next tick to run; negative during the countdown
    announced: int  # last countdown number announced
    multiplier: float = 1.0
    timing: RunTiming | None = None  # from Go
    offset: float = 0.0  # run time (s since Go) at which the simulation's clock read 0
    restart_at: float | None = None  # resets "none": when the car goes back on the start line
    steps: int = 0
    last_t: float = 0.0
    last_command: dict[str, Any] | None = field(default=None)


def _reward_params(params: Mapping[str, Any], policy: tuple[float, float]) -> dict[str, Any]:
    """The step's reward params for scoring after the run: the pose the step reached, with the
    model's own action (before the speed multiplier), as DeepRacer gives it. ``waypoints`` stays
    behind: it is the track's, the scorer adds it once instead of pickling it every tick."""
    out = {key: value for key, value in params.items() if key != "waypoints"}
    out["steering_angle"], out["speed"] = float(policy[0]), float(policy[1])
    return out


def _objects(raw: Mapping[str, Any]) -> ObjectsConfig:
    fields = dict(raw)
    if "object_positions" in fields:
        fields["object_positions"] = tuple((float(p), str(lane)) for p, lane in fields["object_positions"])
    return ObjectsConfig(**fields)


def _episode(spec: RunSpec) -> EpisodeConfig:
    return EpisodeConfig(
        mode="evaluation",
        max_steps=2**62,
        continuous_laps=True,
        resets=None if spec.resets == "unlimited" else 0,
        off_track_penalty=spec.off_track_penalty_s,
        collision_penalty=spec.collision_penalty_s,
        control_hz=TICK_HZ,
    )


class LiveSession:
    """One LIVE race's simulator, timing and current run (see the module docstring)."""

    def __init__(self, race_id: int, route_id: str, reverse: bool, *, n_sectors: int = 3, laps: Iterable[Lap] = ()):
        self.race_id = race_id
        self.n_sectors = n_sectors
        self.timing = RaceTiming(n_sectors=n_sectors, laps=laps)
        self.objects = ObjectsConfig()
        self.sim = Simulation(route_id, reverse, objects=self.objects, episode=EpisodeConfig(mode="evaluation"))
        self.sim.reset()
        # warm-up: rasterise the camera texture now, not at the first racer's first frame
        track_texture(self.sim.track)
        self.run: _Run | None = None
        self.last_step: int | None = None  # the run's step number if the last tick stepped the car
        # Called before each later physics sub-step of a driving tick (the real-time host waits for
        # the sub-step's moment there and applies speed control that arrived meanwhile).
        self.between_substeps: Callable[[int], None] | None = None

    @property
    def running(self) -> bool:
        return self.run is not None

    # --- commands ----------------------------------------------------------------------------
    def launch(self, spec: RunSpec) -> list[Event]:
        """Place the car on the start line, load the driver and start the countdown."""
        if self.run is not None:
            raise RuntimeError(f"run {self.run.spec.run_id} is still on track")
        objects = _objects(spec.objects)
        sim = self.sim
        if (spec.route_id, spec.reverse, objects) != (sim.route_id, sim.base_reverse, sim.objects_config):
            self.sim = sim = Simulation(spec.route_id, spec.reverse, objects=objects, episode=_episode(spec))
            track_texture(sim.track)
        sim.config = _episode(spec)
        sim.seed(spec.seed)
        sim.reset()
        self.timing.resets = spec.resets
        self.timing.off_track_penalty_s = spec.off_track_penalty_s
        self.timing.collision_penalty_s = spec.collision_penalty_s
        d = spec.driver
        try:
            driver = load_driver(d.kind, d.onnx_path, d.model_metadata, d.reference_speed, spec.seed)
        except DriverError as error:
            base = {"race_id": self.race_id, "run_id": spec.run_id, "racer_id": spec.racer_id}
            return [{"type": "run_end", **base, "t": 0.0, "reason": "run_failed", "laps": 0, "message": str(error)}]
        countdown_ticks = round(spec.countdown_s * TICK_HZ)
        self.run = _Run(spec, driver, tick=-countdown_ticks, announced=math.ceil(spec.countdown_s) + 1)
        return []

    def set_multiplier(self, multiplier: float) -> list[Event]:
        """Use ``multiplier`` from this tick on (only while a run is on; a launch starts at 1.0)."""
        run = self.run
        if run is None or run.multiplier == multiplier:
            return []
        run.multiplier = multiplier
        return [{**self._base(run, "speed"), "multiplier": multiplier}]

    def abort(self, reason: str) -> list[Event]:
        """End the run on track now; ``reason`` names a run_end reason or is free text (aborted)."""
        run = self.run
        if run is None:
            return []
        end: RunEndReason = "aborted"
        if reason in ("time_up", "run_failed", "interrupted"):
            end = reason  # type: ignore[assignment]
        return self._end(run, run.tick * DT, end, reason)

    def reset(self) -> list[Event]:
        """Reset the simulator: a run on track is interrupted, the car goes back to the start line."""
        events = self.abort("interrupted")
        self.sim.reset()
        return events

    def clear_timing(self) -> None:
        self.timing.clear()

    # --- the clock ---------------------------------------------------------------------------
    def tick(self) -> list[Event]:
        """Advance the run by one tick (1/15 s); no-op without a run."""
        run = self.run
        self.last_step = None
        if run is None:
            return []
        t = run.tick * DT
        run.tick += 1
        if run.tick <= 0:
            return self._countdown(run, t)
        events: list[Event] = []
        if run.timing is None:
            run.timing = self.timing.start_run(run.spec.racer_id, run.spec.run_id, run.spec.slot_s)
            events.append({**self._base(run, "run_started"), "t": 0.0, "slot_s": float(run.spec.slot_s)})
        try:
            events += self._drive(run, run.timing, t)
        except Exception as error:  # a failing model (or sim) fails this run, not the host
            return events + self._end(run, t, "run_failed", f"{type(error).__name__}: {error}")
        t_next = run.tick * DT
        run.last_t = t_next
        events.append(self._telemetry(run, run.timing, t_next))
        if t_next >= run.spec.slot_s - _EPS:
            events += self._end(run, float(run.spec.slot_s), "time_up", "time_up")
        return events

    def _countdown(self, run: _Run, t: float) -> list[Event]:
        value = math.ceil(-t - _EPS)
        if value >= 1 and value < run.announced:
            run.announced = value
            return [{**self._base(run, "countdown"), "t": t, "value": value}]
        return []

    def _drive(self, run: _Run, timing: RunTiming, t: float) -> list[Event]:
        sim = self.sim
        world = sim.world
        assert world is not None
        events: list[Event] = []
        run.last_command = None
        if run.restart_at is not None and t >= run.restart_at - _EPS:
            sim.reset()
            run.offset = t
            run.restart_at = None
            events += self._stamp(run, timing.restart_attempt(t), t)
        if timing.attempt_over or run.offset + world.sim_time > t + _EPS:
            return events  # held: a penalty pause, or waiting to go back on the start line
        policy = run.driver.act(sim)
        steering, speed = policy[0], applied_speed(policy[1], run.multiplier)
        before = {name: getattr(sim.metrics, name) for name, _ in _RESET_COUNTERS}
        progress_before = sim.progress.prev
        world_before = world.sim_time
        hook = self.between_substeps

        def speed_at(substep: int) -> float:
            assert hook is not None
            hook(substep)
            return applied_speed(policy[1], run.multiplier)

        outcome = sim.step(steering, speed, speed_at if hook is not None else None)
        run.steps += 1
        self.last_step = run.steps
        run.last_command = {"step": run.steps, "policy": list(policy), "applied": [steering, speed]}
        if run.spec.driver.reward_function is not None:
            run.last_command["params"] = _reward_params(outcome.params, policy)
        progress_after = 100.0 if outcome.lap_time is not None else float(outcome.params["progress"])
        step_start = run.offset + world_before
        for sector in range(self.n_sectors - 1):
            boundary = 100.0 * (sector + 1) / self.n_sectors
            if progress_before < boundary <= progress_after:
                frac = (boundary - progress_before) / (progress_after - progress_before)
                crossing = step_start + frac * world.control_dt
                events += self._stamp(run, timing.sector_crossed(sector, crossing), crossing)
        if outcome.lap_time is not None and not timing.finished:
            crossing = run.offset + sim.lap_start_time
            events += self._stamp(run, timing.lap_completed(crossing), crossing)
        if timing.finished:
            return events
        step_end = step_start + world.control_dt
        kind = _ENDING_STATUS.get(outcome.status) if outcome.terminated else None
        if kind is None and outcome.status == ep.PAUSE:
            kind = next((k for name, k in _RESET_COUNTERS if getattr(sim.metrics, name) > before[name]), "off_track")
        if kind is not None:
            events += self._stamp(run, timing.reset(kind, step_end), step_end)
            if timing.attempt_over:
                penalty = run.spec.collision_penalty_s if kind == "crash" else run.spec.off_track_penalty_s
                run.restart_at = step_end + penalty
        return events

    # --- events ------------------------------------------------------------------------------
    def _base(self, run: _Run, kind: str) -> Event:
        return {"type": kind, "race_id": self.race_id, "run_id": run.spec.run_id, "racer_id": run.spec.racer_id}

    def _stamp(self, run: _Run, events: list[Event], t: float) -> list[Event]:
        return [{**event, "race_id": self.race_id, "t": t} for event in events]

    def _telemetry(self, run: _Run, timing: RunTiming, t: float) -> Event:
        world = self.sim.world
        assert world is not None
        progress = float(self.sim.last_params.get("progress", 0.0))
        return {
            **self._base(run, "telemetry"),
            **timing.status(t),
            "t": t,
            "speed": abs(world.speed),
            "progress": min(max(progress, 0.0), 100.0),
            "multiplier": run.multiplier,
            "x": world.x,
            "y": world.y,
            "heading": math.degrees(world.yaw),
            "host": run.last_command,
            # for the broadcast camera; not part of the protocol message (the service's shape drops it)
            "objects": [
                [b.x, b.y, b.yaw, b.length, b.width, b.height, b.is_bot]
                for b in (self.sim.track_objects.boxes if self.sim.track_objects is not None else ())
            ],
        }

    def _end(self, run: _Run, t: float, reason: RunEndReason, message: str) -> list[Event]:
        self.run = None
        events: list[Event] = []
        if run.timing is not None:
            finish: FinishReason = "interrupted" if reason == "aborted" else reason
            events += self._stamp(run, run.timing.finish(max(t, 0.0), finish), min(max(t, 0.0), run.spec.slot_s))
        laps = run.timing.laps_completed if run.timing is not None else 0
        end = {**self._base(run, "run_end"), "t": t, "reason": reason, "laps": laps, "message": message}
        return [*events, end]
