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
