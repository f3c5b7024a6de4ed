"""A real car: servo and speed controller on Linux sysfs PWM, camera through V4L2 (PyAV).

Defaults follow the stock DeepRacer: pwmchip0, throttle on channel 0, steering on channel 1,
20 ms period, servos enabled by writing 0 to GPIO 436, tail-light LEDs (red, green, blue) on
channels 2, 3, 4. Every one of these is an option for DIY cars (``trackside car --help``).
``root`` prefixes every sysfs path (tests point it at a temporary directory).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from car_client.backends import BackendError
from car_client.calibration import PWM_PERIOD_NS, STOCK, Calibration


class SysfsPwm:
    def __init__(self, root: Path, chip: int, channel: int) -> None:
        self.dir = root / f"sys/class/pwm/pwmchip{chip}/pwm{channel}"
        chip_dir = self.dir.parent
        if not self.dir.exists():
            try:
                (chip_dir / "export").write_text(str(channel))
            except OSError as error:
                raise BackendError(f"cannot export PWM channel {channel} of {chip_dir} ({error})") from error
        self.write("period", PWM_PERIOD_NS)
        self.write("enable", 1)

    def write(self, name: str, value: int) -> None:
        try:
            (self.dir / name).write_text(str(int(value)))
        except OSError as error:
            raise BackendError(f"cannot write {self.dir / name} ({error})") from error


class PwmBackend:
    hardware = "sysfs-pwm"
    capabilities: tuple[str, ...] = ("pwm", "camera", "tail_light")

    def __init__(
        self,
        root: str = "/",
        chip: int = 0,
        throttle_channel: int = 0,
        steering_channel: int = 1,
        enable_gpio: int | None = 436,
        led_channels: tuple[int, int, int] | None = (2, 3, 4),
        camera: str | None = "/dev/video0",
        battery_path: str | None = None,
    ) -> None:
        base = Path(root)
        self.calibration: Calibration = STOCK
        self.throttle = SysfsPwm(base, chip, throttle_channel)
        self.steering = SysfsPwm(base, chip, steering_channel)
        self.leds = [SysfsPwm(base, chip, c) for c in led_channels] if led_channels else []
        self.battery_path = Path(battery_path) if battery_path else None
        if enable_gpio is not None:
            gpio = base / f"sys/class/gpio/gpio{enable_gpio}"
            try:
                if not gpio.exists():
                    (base / "sys/class/gpio/export").write_text(str(enable_gpio))
                (gpio / "direction").write_text("out")
                (gpio / "value").write_text("0")  # 0 enables the servo rail on the stock board
            except OSError as error:
                raise BackendError(f"cannot enable the servos through GPIO {enable_gpio} ({error})") from error
        self.camera = V4l2Camera(camera) if camera else None

    def set_calibration(self, calibration: Any) -> None:
        self.calibration = calibration

    def apply(self, steering: float, throttle: float) -> None:
        self.steering.write("duty_cycle", self.calibration.steering.pulse_ns(steering))
        self.throttle.write("duty_cycle", self.calibration.throttle.pulse_ns(throttle))

    def neutral(self) -> None:
        self.throttle.write("duty_cycle", self.calibration.throttle.mid)
        self.steering.write("duty_cycle", self.calibration.steering.mid)

    def frame(self) -> NDArray[np.uint8] | None:
        return self.camera.latest() if self.camera else None

    def battery_pct(self) -> float | None:
        if self.battery_path is None:
            return None
        try:
            return max(0.0, min(100.0, float(self.battery_path.read_text().strip())))
        except (OSError, ValueError):
            return None

    def tail_light(self, colour: str) -> None:
        rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
        for led, value in zip(self.leds, rgb, strict=False):
            led.write("duty_cycle", round(PWM_PERIOD_NS * value / 255))

    def close(self) -> None:
        self.neutral()
        if self.camera:
            self.camera.close()


class V4l2Camera:
    """Grabs frames in a thread and keeps only the newest, grey 160 x 120 (latest frame wins)."""

    def __init__(self, device: str, input_format: str | None = "v4l2") -> None:
        import av  # only a real car with a camera needs PyAV

        options = {"video_size": "160x120", "framerate": "15"} if input_format == "v4l2" else {}
        try:
            self.container = av.open(device, format=input_format, options=options)
        except (OSError, av.FFmpegError) as error:
            raise BackendError(f"cannot open the camera {device} ({error})") from error
        self._frame: NDArray[np.uint8] | None = None
        self.frames = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._grab, name="camera", daemon=True)
        self._thread.start()

    def _grab(self) -> None:
        import av

        # The container is closed by this thread only: PyAV must not close it under a decode.
        try:
            for frame in self.container.decode(video=0):
                if self._stop.is_set():
                    return
                self._frame = downscale(np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8))
                self.frames += 1
        except (OSError, av.FFmpegError) as error:
            self.error = f"camera stopped: {error}"
        finally:
            self.container.close()

    def latest(self) -> NDArray[np.uint8] | None:
        return self._frame

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def downscale(grey: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Nearest-neighbour to 120 x 160 x 1 (cameras that ignore the requested size)."""
    h, w = grey.shape[:2]
    rows = (np.arange(120) * h // 120).astype(np.intp)
    cols = (np.arange(160) * w // 160).astype(np.intp)
    return np.ascontiguousarray(grey[rows][:, cols]).reshape(120, 160, 1)
