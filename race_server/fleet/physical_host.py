"""A LIVE race on a real track: the queue service's Host, driving a physical car over its link.

It speaks the same events as the simulator's RaceHost (``race_server.live.host``), so the queue
service, the event log, the overlay and the leaderboard treat a physical run like a virtual one:
countdown {value}, run_started {slot_s} (Go), telemetry, lap / penalty / attempt_ended (from
``races.timing`` via ``races.lap_sensor``), run_end {reason} and host_error.

A run: ``launch`` checks the car is linked and starts the countdown at once; meanwhile the car is
stopped, put in autonomous mode, its tail light set to the racer's colour, its speed multiplier
reset and the racer's model pushed (the car bundle, built from the model store's files and
offered to that car only). At Go the car must have acknowledged the model: it is armed and the
run's clock starts. Laps come from the lap sensor (``crossing``, debounced) or the timekeeper
(``lap``, ``off_track``, ``dnf``, ``undo_last_lap``, ``pause``). Speed control is forwarded to
the car. At time up (the checkered flag) the car is stopped; a car that goes offline mid-run
fails the run (it has stopped itself already: its dead-man).

Clocks: the run's clock is this process's monotonic clock minus pauses (``lap_sensor.RunClock``).
A lap sensor stamps crossings on its own wall clock and says when it sent them; the offset
between its clock and ours is taken at receipt, so timer and server need no clock sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from race_server.fleet.bundle import build_bundle
from race_server.fleet.links import CarCommandError, CarLinks
from race_server.live.events import HostEvent, from_wire
from race_server.live.spec import RunSpec, check_multiplier
from race_server.queue.machine import QueueError
from race_server.races.lap_sensor import RunClock, TrackRun
from race_server.races.ranking import Lap
from race_server.races.timing import RaceTiming

log = logging.getLogger("trackside.fleet")
Event = dict[str, Any]
TELEMETRY_HZ = 10.0
MODEL_LOAD_TIMEOUT_S = 120.0
RACER_COLOURS = ("#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6")


def racer_colour(racer_id: int) -> str:
    """The racer's tail-light colour: stable per racer, neighbours in the queue differ."""
    return RACER_COLOURS[racer_id % len(RACER_COLOURS)]


class PhysicalHostError(RuntimeError):
    pass


class PhysicalHost:
    def __init__(
        self,
        race_id: int,
        car_id: int,
        links: CarLinks,
        data_dir: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.race_id = race_id
        self.car_id = car_id
        self.links = links
        self.data_dir = data_dir
        self.clock = clock
        self.timing = RaceTiming(n_sectors=1)
        self.spec: RunSpec | None = None
        self.track: TrackRun | None = None
        self.run_clock: RunClock | None = None
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._ended = False  # the run's run_end went out
        self._closed = False

    # --- the queue service's Host ------------------------------------------------------------
    async def start(self, route_id: str, reverse: bool, laps: Sequence[Lap] = ()) -> None:
        self.timing = RaceTiming(n_sectors=1, laps=laps)

    async def launch(self, spec: RunSpec) -> None:
        if self._task is not None and not self._task.done():
            raise PhysicalHostError("a run is already on track")
        if spec.driver.kind != "onnx" or spec.driver.onnx_path is None or spec.driver.model_metadata is None:
            raise PhysicalHostError("a physical car drives only a racer's model (model.onnx), not the reference driver")
        if self.links.get(self.car_id) is None:
            raise PhysicalHostError(f"car {self.car_id} is not linked to the server; switch it on and check its token")
        self.spec = spec
        self.track, self.run_clock = None, None
        self.timing.resets = spec.resets
        self.timing.off_track_penalty_s = spec.off_track_penalty_s
        self.timing.collision_penalty_s = spec.collision_penalty_s
        self._ended = False
        self._task = asyncio.create_task(self._run(spec), name=f"physical-run-{spec.run_id}")

    async def set_speed_multiplier(self, multiplier: float) -> float:
        value = check_multiplier(multiplier)
        try:
            await self.links.command(self.car_id, "set_speed_multiplier", multiplier=value)
        except CarCommandError as error:
            # the racer's page shows it like any refused speed change
            raise QueueError(error.code, f"the car did not take the speed change: {error.message}") from None
        return value

    async def abort(self, reason: str) -> None:
        if self._task is None or self._task.done():
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        await self._stop_car()
        if self.track is not None and self.run_clock is not None:
            self._emit(self.track.run.finish(self.run_clock.t(self.clock()), "interrupted"))
        self._end(reason if reason in ("interrupted", "aborted", "run_failed") else "aborted", reason)

    async def clear_timing(self) -> None:
        self.timing.clear()

    async def events(self) -> AsyncIterator[HostEvent]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield from_wire(event)

    async def close(self) -> None:
        if self._closed:
            return
        await self.abort("interrupted")
        self._closed = True
        self._queue.put_nowait(None)

    # --- the track side: lap sensor and timekeeper ---------------------------------------------
    def _on_track(self) -> tuple[TrackRun, float]:
        if self.track is None or self.run_clock is None or self.track.run.finished:
            raise PhysicalHostError("no run is on track")
        return self.track, self.run_clock.t(self.clock())

    def crossing(self, stamp: float, sent_at: float, received_at: float) -> int:
        """A lap-sensor crossing stamped ``stamp`` on the sensor's clock, which read ``sent_at``
        when it sent it; we received it at ``received_at`` (our wall clock). Returns laps added."""
        track, now_t = self._on_track()
        assert self.run_clock is not None
        age = max(0.0, sent_at - stamp) + max(0.0, time.time() - received_at)
        events = track.crossing(now_t - age)
        self._emit(events)
        return sum(1 for e in events if e["type"] == "lap")

    def lap(self) -> list[Event]:
        track, t = self._on_track()
        return self._emit(track.lap(t))

    def off_track(self, delta: int) -> list[Event]:
        track, t = self._on_track()
        return self._emit(track.off_track(t, delta))

    def undo_last_lap(self) -> Lap | None:
        track, _ = self._on_track()
        return track.undo_last_lap()

    async def dnf(self) -> None:
        track, t = self._on_track()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._stop_car()
        self._emit(track.dnf(t))
        self._end("run_failed", "DNF (did not finish)")

    async def pause(self, paused: bool) -> None:
        self._on_track()
        assert self.run_clock is not None
        now = self.clock()
        if paused:
            self.run_clock.pause(now)
            await self._stop_car()
        else:
            self.run_clock.resume(now)
            await self.links.command(self.car_id, "arm")

    # --- the run ---------------------------------------------------------------------------------
    def _emit(self, events: Sequence[Event]) -> list[Event]:
        out = []
        for event in events:
            full = {**event, "race_id": self.race_id}
            self._queue.put_nowait(full)
            out.append(full)
        return out

    def _end(self, reason: str, message: str | None = None) -> None:
        """``reason``: time_up, interrupted, aborted, or run_failed with ``message`` saying why;
        a failure's message is its reason on the wire, so the organizer reads why the run failed."""
        if self._ended or self.spec is None:
            return
        if reason == "run_failed" and message:
            reason = message
        self._ended = True
        spec = self.spec
        laps = self.track.run.laps_completed if self.track else 0
        self._emit([{"type": "run_end", "run_id": spec.run_id, "racer_id": spec.racer_id, "reason": reason,
                     "message": message or reason, "laps": laps}])  # fmt: skip

    async def _stop_car(self) -> None:
        with contextlib.suppress(CarCommandError):
            await self.links.command(self.car_id, "stop")

    async def _prepare(self, spec: RunSpec) -> None:
        driver = spec.driver
        assert driver.onnx_path is not None and driver.model_metadata is not None
        path, sha256 = await asyncio.to_thread(
            build_bundle, driver.model_metadata, Path(driver.onnx_path), self.data_dir / "car-bundles"
        )
        self.links.offer_bundle(self.car_id, sha256, path)
        link = self.links.get(self.car_id)
        if link is None:
            raise CarCommandError("car_offline", f"car {self.car_id} went offline")
        await link.command("stop")
        await link.command("set_mode", mode="autonomous")
        await link.command("tail_light", colour=racer_colour(spec.racer_id))
        await link.command("set_speed_multiplier", multiplier=1.0)
        await link.command(
            "load_model",
            wait_s=MODEL_LOAD_TIMEOUT_S,
            model_id=max(1, spec.run_id),
            name=f"run-{spec.run_id}",
            url=f"/api/car/bundles/{sha256}",
            sha256=sha256,
        )

    async def _run(self, spec: RunSpec) -> None:
        base = {"run_id": spec.run_id, "racer_id": spec.racer_id}
        prepare = asyncio.create_task(self._prepare(spec))
        try:
            start = self.clock()
            countdown = round(spec.countdown_s)
            for value in range(countdown, 0, -1):
                await self._sleep_until(start + (countdown - value))
                self._emit([{**base, "type": "countdown", "value": value, "t": float(-value)}])
            await self._sleep_until(start + spec.countdown_s)
            try:
                await asyncio.wait_for(asyncio.shield(prepare), MODEL_LOAD_TIMEOUT_S)
                await self.links.command(self.car_id, "arm")
            except CarCommandError as error:
                self._end("run_failed", f"the car refused the run: {error.code}: {error.message}")
                return
            except Exception as error:
                self._end("run_failed", f"preparing the car failed: {error}")
                return
            self.run_clock = RunClock(go=self.clock())
            self.track = TrackRun(self.timing.start_run(spec.racer_id, spec.run_id, spec.slot_s, 0.0))
            self._emit([{**base, "type": "run_started", "slot_s": spec.slot_s, "t": 0.0}])
            await self._drive(spec)
        finally:
            if not prepare.done():
                prepare.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await prepare

    async def _sleep_until(self, at: float) -> None:
        await asyncio.sleep(max(0.0, at - self.clock()))

    async def _drive(self, spec: RunSpec) -> None:
        assert self.track is not None and self.run_clock is not None
        period = 1.0 / TELEMETRY_HZ
        while True:
            t = self.run_clock.t(self.clock())
            if t >= spec.slot_s:
                await self._stop_car()
                self._emit(self.track.run.finish(spec.slot_s, "time_up"))
                self._end("time_up")
                return
            link = self.links.get(self.car_id)
            if link is None:
                self._emit(self.track.run.finish(t, "run_failed"))
                self._end("run_failed", "the car went offline (it stopped itself)")
                return
            self._emit([self._telemetry(t, link.telemetry)])
            await asyncio.sleep(min(period, max(0.0, spec.slot_s - t)))

    def _telemetry(self, t: float, car: Any) -> Event:
        assert self.track is not None
        status = self.track.run.status(t)
        speed = float(car.speed_mps) if car is not None and car.speed_mps is not None else 0.0
        multiplier = float(car.multiplier) if car is not None else 1.0
        paused = bool(self.run_clock and self.run_clock.paused)
        host = {"physical": True, "car_id": self.car_id, "paused": paused}
        return {**status, "type": "telemetry", "t": t, "speed": speed, "progress": 0.0, "multiplier": multiplier,
                "tick_at": time.time(), "host": host}  # fmt: skip
