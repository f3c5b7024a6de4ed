"""The real-car backend on a stand-in sysfs tree: pulses as the stock servo node writes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from car_client.backends import BackendError
from car_client.backends.pwm import PwmBackend
from car_client.calibration import STOCK


def fake_sysfs(root: Path, channels: range = range(5), gpio: int = 436) -> Path:
    for channel in channels:
        pwm = root / f"sys/class/pwm/pwmchip0/pwm{channel}"
        pwm.mkdir(parents=True)
    (root / f"sys/class/gpio/gpio{gpio}").mkdir(parents=True)
    return root


def read(root: Path, channel: int, name: str) -> int:
    return int((root / f"sys/class/pwm/pwmchip0/pwm{channel}/{name}").read_text())


def test_servo_pulses_follow_the_stock_mapping_and_the_enable_line(tmp_path: Path) -> None:
    root = fake_sysfs(tmp_path)
    backend = PwmBackend(root=str(root), camera=None)
    backend.set_calibration(STOCK)
    assert read(root, 0, "period") == 20_000_000 and read(root, 1, "enable") == 1
    assert (root / "sys/class/gpio/gpio436/value").read_text() == "0"  # servo rail enabled
    backend.apply(0.5, 1.0)
    assert read(root, 1, "duty_cycle") == STOCK.steering.pulse_ns(0.5) == 1_575_000
    assert read(root, 0, "duty_cycle") == 1_311_000  # full forward, motor polarity −1
    backend.neutral()
    assert read(root, 0, "duty_cycle") == 1_446_000 and read(root, 1, "duty_cycle") == 1_450_000
    backend.tail_light("#ff0080")
    assert [read(root, c, "duty_cycle") for c in (2, 3, 4)] == [20_000_000, 0, round(20_000_000 * 128 / 255)]


def test_missing_hardware_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="cannot export PWM channel 0"):
        PwmBackend(root=str(tmp_path), camera=None)


def test_the_camera_reader_keeps_the_newest_frame_grey_160_by_120(tmp_path: Path) -> None:
    import av
    import numpy as np

    from car_client.backends.pwm import V4l2Camera

    # A camera that ignores the requested size: 320 x 240 frames, each brighter than the last.
    path = tmp_path / "camera.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=15)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "gray"
        for value in (40, 90, 140):
            frame = av.VideoFrame.from_ndarray(np.full((240, 320), value, np.uint8), format="gray")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    camera = V4l2Camera(str(path), input_format=None)
    camera._thread.join(timeout=10)  # a file ends; a real camera streams until closed
    latest = camera.latest()
    assert camera.frames == 3 and camera.error is None
    assert latest is not None and latest.shape == (120, 160, 1) and latest.dtype == np.uint8
    assert int(latest.mean()) == 140
    camera.close()
