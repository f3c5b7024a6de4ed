"""The car's state and its rules: modes, arming, the latched e-stop, the dead-man timer.

One lock guards every change, because three threads drive the car: the link (commands, server
heartbeats), the 15 Hz drive loop (model outputs) and the dead-man watchdog. Outputs reach the
backend only through this class, and only while armed and not e-stopped, so a late model output
can never move a car that the dead-man or an e-stop just stopped.

Dead-man: the link feeds ``heartbeat()`` for each server heartbeat. The watchdog thread waits for
the deadline (last heartbeat + ``dead_man_s``) itself rather than polling, so the car is in
neutral and disarmed at most ``dead_man_s`` after the last heartbeat, even if the asyncio loop is
stuck. It stays disarmed: only an explicit ``arm`` drives again. A closed link trips at once.

The e-stop is latched in memory and in ``state_dir/estop`` (survives reconnects and restarts):
only ``clear_estop`` clears it, and clearing does not arm.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from car_client.backends import Backend
from car_client.calibration import Calibration, CalibrationError, parse_calibration, save_calibration
from car_client.navigation import Command

MODES = ("manual", "autonomous", "calibration")
DEAD_MAN_S = 0.3


class CommandError(Exception):
    """A command the car refuses; ``code`` goes into the error reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Outputs:
    steering: float = 0.0
    throttle: float = 0.0
    action: int | None = None


class CarController:
    def __init__(
        self,
        backend: Backend,
        calibration: Calibration,
        state_dir: Path,
        *,
        dead_man_s: float = DEAD_MAN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.calibration = calibration
        self.state_dir = state_dir
        self.dead_man_s = dead_man_s
        self.clock = clock
        self.lock = threading.RLock()
        self.mode = "autonomous"
        self.armed = False
        self.estop = (state_dir / "estop").exists()
        self.max_speed = 1.0
        self.multiplier = 1.0
        self.model: Any = None  # car_client.inference.LoadedModel
        self.outputs = Outputs()
        self.tripped_at: float | None = None  # when the dead-man last stopped the car
        self.trip_reason: str | None = None
        self._deadline: float | None = None
        self._wake = threading.Condition(self.lock)
        self._closed = False
        self._watchdog = threading.Thread(target=self._watch, name="dead-man", daemon=True)
        backend.set_calibration(calibration)
        backend.neutral()
        self._watchdog.start()

    # --- the dead-man ----------------------------------------------------------------------------
    def heartbeat(self) -> None:
        with self.lock:
            self._deadline = self.clock() + self.dead_man_s
            self._wake.notify()

    def link_lost(self, reason: str) -> None:
        """The link closed: stop now rather than waiting for the deadline."""
        with self.lock:
            self._deadline = None
            self._trip(reason)

    def _watch(self) -> None:
        with self.lock:
            while not self._closed:
                if self._deadline is None:
                    self._wake.wait()
                    continue
                remaining = self._deadline - self.clock()
                if remaining > 0:
                    self._wake.wait(remaining)
                    continue
                self._deadline = None
                self._trip(f"no heartbeat from the server for {round(self.dead_man_s * 1000)} ms")

    def _trip(self, reason: str) -> None:
        self.backend.neutral()
        self.outputs = Outputs()
        if self.armed:
            self.tripped_at = self.clock()
            self.trip_reason = reason
        self.armed = False

    def close(self) -> None:
        with self.lock:
            self._closed = True
            self._deadline = None
            self.backend.neutral()
            self.armed = False
            self._wake.notify()
        self._watchdog.join(timeout=2)

    # --- commands ----------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        with self.lock:
            if mode not in MODES:
                raise CommandError("out_of_range", f"mode {mode!r}; allowed values: {', '.join(MODES)}")
            if self.armed and mode != self.mode:
                raise CommandError("armed", "stop the car before changing mode")
            self.mode = mode

    def arm(self) -> None:
        with self.lock:
            if self.estop:
                raise CommandError("estop_latched", "emergency stop is latched; clear it first (clear_estop)")
            if self._deadline is None:
                raise CommandError("no_link", "no heartbeat from the server yet; the car arms only on a live link")
            if self.mode == "autonomous" and self.model is None:
                raise CommandError("no_model", "load a model before starting autonomous driving")
            if self.mode == "calibration":
                raise CommandError("wrong_mode", "calibration mode does not drive; choose manual or autonomous")
            self.armed = True
            self.tripped_at = None
            self.trip_reason = None

    def stop(self) -> None:
        with self.lock:
            self.backend.neutral()
            self.outputs = Outputs()
            self.armed = False

    def emergency_stop(self) -> None:
        with self.lock:
            self.backend.neutral()
            self.outputs = Outputs()
            self.armed = False
            self.estop = True
            self.state_dir.mkdir(parents=True, exist_ok=True)
            (self.state_dir / "estop").write_text("latched\n")

    def clear_emergency_stop(self) -> None:
        with self.lock:
            self.estop = False
            (self.state_dir / "estop").unlink(missing_ok=True)

    def set_max_speed(self, value: float) -> None:
        with self.lock:
            if not 0.0 <= value <= 1.0:
                raise CommandError("out_of_range", f"max speed {value!r}; allowed values: 0 to 1")
            self.max_speed = value

    def set_multiplier(self, value: float) -> None:
        with self.lock:
            if not 0.5 <= value <= 2.0:
                raise CommandError("out_of_range", f"speed multiplier {value!r}; allowed values: 0.5 to 2")
            self.multiplier = value

    def set_model(self, model: Any) -> None:
        with self.lock:
            if self.armed:
                raise CommandError("armed", "stop the car before loading another model")
            self.model = model

    def set_calibration(self, data: dict[str, Any]) -> Calibration:
        with self.lock:
            if self.armed:
                raise CommandError("armed", "stop the car before changing its calibration")
            try:
                calibration = parse_calibration(data)
            except CalibrationError as error:
                raise CommandError("invalid_calibration", str(error)) from None
            save_calibration(calibration, self.state_dir / "calibration.json")
            self.calibration = calibration
            self.backend.set_calibration(calibration)
            self.backend.neutral()
            return calibration

    def drive(self, angle: float, throttle: float) -> None:
        """Manual driving (manual mode, armed)."""
        with self.lock:
            if self.mode != "manual":
                raise CommandError("wrong_mode", f"manual drive commands need manual mode (the car is in {self.mode})")
            if not self.armed:
                raise CommandError("not_armed", "start the car (arm) before driving it")
            self._apply(Outputs(angle, throttle * self.max_speed))

    def autonomous(self, command: Command, model: Any) -> bool:
        """A model output from the drive loop; dropped unless still armed with that model."""
        with self.lock:
            if not self.armed or self.mode != "autonomous" or self.model is not model:
                return False
            self._apply(Outputs(command.steering, command.throttle, command.action))
            return True

    def _apply(self, outputs: Outputs) -> None:
        self.backend.apply(outputs.steering, outputs.throttle)
        self.outputs = outputs

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "mode": self.mode,
                "armed": self.armed,
                "estop": self.estop,
                "max_speed": self.max_speed,
                "multiplier": self.multiplier,
                "model": getattr(self.model, "name", None),
                "action": self.outputs.action,
                "steering": self.outputs.steering,
                "throttle": self.outputs.throttle,
            }
