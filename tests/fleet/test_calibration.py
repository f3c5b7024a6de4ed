"""Calibration against the stock servo node's data model and duty-cycle mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from car_client.calibration import (
    STOCK,
    Calibration,
    CalibrationError,
    ServoCalibration,
    load_calibration,
    parse_calibration,
    save_calibration,
)

# A stock car's /opt/aws/deepracer/calibration.json as the servo node writes it (Servo = steering).
STOCK_FILE = {
    "Calibration": {
        "Servo": {"max": 1690000, "mid": 1440000, "min": 1190000, "polarity": 1},
        "Motor": {"max": 1620000, "mid": 1450000, "min": 1300000, "polarity": -1},
        "version": 1,
    }
}


def test_stock_defaults_are_the_stock_cars() -> None:
    assert STOCK.steering == ServoCalibration(1_200_000, 1_450_000, 1_700_000, 1)
    assert STOCK.throttle == ServoCalibration(1_311_000, 1_446_000, 1_603_500, -1)


def test_the_stock_duty_cycle_mapping() -> None:
    steering = STOCK.steering
    assert steering.pulse_ns(0.0) == 1_450_000
    assert steering.pulse_ns(1.0) == 1_700_000  # mid + 1 × (max − mid)
    assert steering.pulse_ns(-1.0) == 1_200_000  # mid − 1 × (mid − min)
    assert steering.pulse_ns(0.5) == 1_575_000
    throttle = STOCK.throttle  # polarity −1: forward throttle shortens the pulse toward min
    assert throttle.pulse_ns(1.0) == 1_311_000
    assert throttle.pulse_ns(-1.0) == 1_603_500
    assert throttle.pulse_ns(0.5) == round(1_446_000 - 0.5 * (1_446_000 - 1_311_000))
    with pytest.raises(CalibrationError, match="-1 to 1"):
        steering.pulse_ns(1.5)


def test_a_stock_calibration_file_is_read_and_written_back_in_the_stock_format(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(STOCK_FILE))
    calibration = load_calibration(path)
    assert calibration.steering == ServoCalibration(1190000, 1440000, 1690000, 1)
    assert calibration.throttle == ServoCalibration(1300000, 1450000, 1620000, -1)
    out = tmp_path / "out.json"
    save_calibration(calibration, out)
    assert json.loads(out.read_text()) == STOCK_FILE
    assert load_calibration(tmp_path / "missing.json") == STOCK


@pytest.mark.parametrize(
    ("channel", "values", "message"),
    [
        ("steering", {"min": 1, "mid": 3, "max": 2, "polarity": 1}, "steering: max > mid > min is required"),
        ("throttle", {"min": 2, "mid": 2, "max": 3, "polarity": -1}, "throttle: max > mid > min is required"),
        ("steering", {"min": 1, "mid": 2, "max": 3, "polarity": 0}, "steering.polarity: 0; allowed values: -1, 1"),
        ("steering", {"min": 1, "mid": 2, "max": 30_000_000, "polarity": 1}, "steering.max"),
        ("throttle", {"min": 1, "mid": 2, "max": 3}, "throttle: missing polarity"),
        ("steering", {"min": 1, "mid": 2.5, "max": 3, "polarity": 1}, "steering.mid: 2.5"),
    ],
)
def test_invalid_calibrations_are_refused_with_the_rule_they_break(
    channel: str, values: dict[str, object], message: str
) -> None:
    data = STOCK.to_dict()
    data[channel] = values  # type: ignore[assignment]
    with pytest.raises(CalibrationError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_calibration(data)


def test_round_trip_of_trackside_shape() -> None:
    assert parse_calibration(STOCK.to_dict()) == STOCK
    assert isinstance(STOCK, Calibration)
