"""Hardware behind the car client: what drives the servos, what sees the track.

``Backend`` is the whole contract; ``open_backend(name, options)`` builds one by name:
``pwm`` (sysfs PWM + V4L2 camera via PyAV, a real car) or ``simulated`` (a car in
``race_server.sim``, for tests and demos). Each is imported only when chosen.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray


class BackendError(RuntimeError):
    """The hardware cannot be opened or driven; the message says what to check."""


class Backend(Protocol):
    hardware: str
    capabilities: tuple[str, ...]

    def apply(self, steering: float, throttle: float) -> None:
        """Servo commands in -1..1 (calibration turns them into pulses)."""

    def neutral(self) -> None:
        """Throttle to its calibrated mid (stopped) and steering centred, at once."""

    def set_calibration(self, calibration: Any) -> None: ...

    def frame(self) -> NDArray[np.uint8] | None:
        """The newest camera frame, 120 x 160 x channels grey (1, or 2 for stereo), or None."""

    def battery_pct(self) -> float | None: ...

    def tail_light(self, colour: str) -> None: ...

    def close(self) -> None: ...


def open_backend(name: str, options: dict[str, Any]) -> Backend:
    if name == "pwm":
        from car_client.backends.pwm import PwmBackend

        return PwmBackend(**options)
    if name == "simulated":
        from car_client.backends.simulated import SimulatedBackend

        return SimulatedBackend(**options)
    raise BackendError(f"backend {name!r}; allowed values: pwm, simulated")
