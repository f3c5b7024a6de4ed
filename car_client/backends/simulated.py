"""A simulated car: a car in ``race_server.sim`` driven by the client's servo commands, seen by
the simulator's camera. Tests and demos use it so a "physical" car joins a race without hardware.

The physics runs in its own thread at 15 Hz real time. Servo commands map as on a stock car
with a linear motor: steering × ``max_steering_deg``, throttle × ``top_speed`` m/s. When the car
leaves the track a marshal puts it back on the centre line (as on a real track), counted in
``marshal_resets``. A line sensor on the start line reports each crossing to ``on_crossing``
(the simulated lap sensor of ``trackside timer --simulated``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from car_client.calibration import STOCK, Calibration

TICK_S = 1.0 / 15.0
START_PAST_LINE_M = 0.2


class SimulatedBackend:
    hardware = "simulated"
    capabilities: tuple[str, ...] = ("camera", "tail_light", "simulated")

    camera: Any

    def __init__(
        self,
        route_id: str = "Bowtie_track",
        reverse: bool = False,
        top_speed: float = 2.0,
        max_steering_deg: float = 30.0,
        on_crossing: Callable[[float], object] | None = None,
        realtime: bool = True,
        stereo: bool = False,
    ) -> None:
        # race_server.sim (MuJoCo) loads only here: a real car never imports it
        from race_server.sim.camera import Camera, StereoCamera
        from race_server.sim.tracks import load_track
        from race_server.sim.world import World

        self.track = load_track(route_id, reverse)
        self.world = World()
        self.camera = StereoCamera(self.track) if stereo else Camera(self.track)
        self.channels = 2 if stereo else 1
        if stereo:
            self.capabilities = (*self.capabilities, "stereo")
        self.top_speed = top_speed
        self.max_steering_deg = max_steering_deg
        self.on_crossing = on_crossing
        self.calibration: Calibration = STOCK
        self.steering = 0.0
        self.throttle = 0.0
        self.neutral_at: float | None = None  # monotonic time of the last switch to neutral
        self.light = "#000000"
        self.marshal_resets = 0
        self.crossings: list[float] = []
        self.distance = 0.0  # metres driven along the centre line since start
        self._lock = threading.Lock()
        self._frame: NDArray[np.uint8] | None = None
        self._stop = threading.Event()
        # just past the start line (a standing start): the first crossing ends lap 1
        x, y, yaw = self.track.pose_at(START_PAST_LINE_M)
        self.world.reset(x, y, yaw)
        self._last_progress = self._progress_m()
        self._render()
        self._thread = threading.Thread(target=self._run, name="sim-car", daemon=True)
        self.realtime = realtime
        self._thread.start()

    def _progress_m(self) -> float:
        return float(self.track.locate(self.world.x, self.world.y).projection_distance)

    def set_calibration(self, calibration: Any) -> None:
        self.calibration = calibration

    def apply(self, steering: float, throttle: float) -> None:
        with self._lock:
            self.steering, self.throttle = steering, throttle
            if throttle != 0.0:
                self.neutral_at = None

    def neutral(self) -> None:
        with self._lock:
            self.steering, self.throttle = 0.0, 0.0
            if self.neutral_at is None:
                self.neutral_at = time.monotonic()

    def frame(self) -> NDArray[np.uint8] | None:
        return self._frame

    def battery_pct(self) -> float | None:
        return 100.0

    def tail_light(self, colour: str) -> None:
        self.light = colour

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def speed(self) -> float:
        return float(self.world.speed)

    def _render(self) -> None:
        frame = self.camera.render(self.world.x, self.world.y, self.world.yaw, [], rng=np.random.default_rng(0))
        self._frame = np.asarray(frame, dtype=np.uint8).reshape(120, 160, -1)[..., : self.channels].copy()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                steering, throttle = self.steering, self.throttle
            self.world.step(steering * self.max_steering_deg, throttle * self.top_speed)
            self._after_step()
            self._render()
            next_at += TICK_S
            if self.realtime:
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _after_step(self) -> None:
        length = self.track.length
        progress = self._progress_m()
        delta = (progress - self._last_progress + length / 2) % length - length / 2
        self._last_progress = progress
        self.distance += delta
        if delta > 0 and progress < delta:  # wrapped past the start line going forward
            stamp = time.time()
            self.crossings.append(stamp)
            if self.on_crossing is not None:
                self.on_crossing(stamp)
        wheels = self.world.wheel_centres()
        if not bool(np.any(self.track.contains(wheels))):
            self.marshal_resets += 1
            x, y, yaw = self.track.pose_at(progress)
            self.world.place(x, y, yaw)
            self._last_progress = self._progress_m()
