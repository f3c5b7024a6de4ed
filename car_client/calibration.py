"""Servo and speed-controller calibration in the stock car's data model (pure).

Each channel is three PWM pulse widths in nanoseconds (``min``, ``mid``, ``max``; the pulse
repeats every 20 ms) and a polarity (+1/−1). A command ``value`` in −1..1 becomes a pulse width
exactly as the stock servo node does it:

    adjusted = value × polarity
    pulse    = mid + adjusted × (mid − min)   when adjusted < 0
             = mid + adjusted × (max − mid)   when adjusted > 0
             = mid                            when adjusted = 0

The stock defaults (``STOCK``) and the stock file ``/opt/aws/deepracer/calibration.json``
(``{"Calibration": {"Servo": {...}, "Motor": {...}, "version": 1}}``; Servo is steering, Motor
is throttle) are read and written as they are, so a calibrated DeepRacer keeps its calibration.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PWM_PERIOD_NS = 20_000_000
STOCK_CALIBRATION_PATH = Path("/opt/aws/deepracer/calibration.json")
STOCK_FILE_VERSION = 1


class CalibrationError(ValueError):
    """An invalid calibration; the message names the channel and the rule it breaks."""


@dataclass(frozen=True)
class ServoCalibration:
    min: int
    mid: int
    max: int
    polarity: int

    def check(self, channel: str) -> ServoCalibration:
        for key in ("min", "mid", "max"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= PWM_PERIOD_NS:
                raise CalibrationError(
                    f"{channel}.{key}: {value!r}; allowed values: whole nanoseconds 0 to {PWM_PERIOD_NS}"
                )
        if self.polarity not in (-1, 1) or isinstance(self.polarity, bool):
            raise CalibrationError(f"{channel}.polarity: {self.polarity!r}; allowed values: -1, 1")
        if not self.max > self.mid > self.min:
            raise CalibrationError(
                f"{channel}: max > mid > min is required; got max {self.max}, mid {self.mid}, min {self.min}"
            )
        return self

    def pulse_ns(self, value: float) -> int:
        """The stock duty-cycle mapping (module docstring); ``value`` outside −1..1 is refused."""
        if not (math.isfinite(value) and -1.0 <= value <= 1.0):
            raise CalibrationError(f"servo command {value!r}; allowed values: -1 to 1")
        adjusted = value * self.polarity
        if adjusted < 0:
            return round(self.mid + adjusted * (self.mid - self.min))
        if adjusted > 0:
            return round(self.mid + adjusted * (self.max - self.mid))
        return self.mid


@dataclass(frozen=True)
class Calibration:
    steering: ServoCalibration
    throttle: ServoCalibration

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {"steering": asdict(self.steering), "throttle": asdict(self.throttle)}

    def to_stock_json(self) -> dict[str, Any]:
        return {
            "Calibration": {
                "Servo": asdict(self.steering),
                "Motor": asdict(self.throttle),
                "version": STOCK_FILE_VERSION,
            }
        }


# The stock car's defaults (ns): steering servo and motor speed controller.
STOCK = Calibration(
    steering=ServoCalibration(min=1_200_000, mid=1_450_000, max=1_700_000, polarity=1),
    throttle=ServoCalibration(min=1_311_000, mid=1_446_000, max=1_603_500, polarity=-1),
)


def _channel(data: Any, name: str) -> ServoCalibration:
    if not isinstance(data, dict):
        raise CalibrationError(f"{name}: must be an object with min, mid, max and polarity")
    missing = [key for key in ("min", "mid", "max", "polarity") if key not in data]
    if missing:
        raise CalibrationError(f"{name}: missing {', '.join(missing)}")
    extra = sorted(set(data) - {"min", "mid", "max", "polarity"})
    if extra:
        raise CalibrationError(f"{name}: unexpected field(s) {', '.join(extra)}")
    return ServoCalibration(data["min"], data["mid"], data["max"], data["polarity"]).check(name)


def parse_calibration(data: Any) -> Calibration:
    """Trackside's shape ``{"steering": {...}, "throttle": {...}}``, validated."""
    if not isinstance(data, dict) or set(data) != {"steering", "throttle"}:
        raise CalibrationError("calibration: must be an object with exactly 'steering' and 'throttle'")
    return Calibration(_channel(data["steering"], "steering"), _channel(data["throttle"], "throttle"))


def parse_stock_calibration(data: Any) -> Calibration:
    """A stock car's calibration.json (Servo = steering, Motor = throttle), validated."""
    body = data.get("Calibration") if isinstance(data, dict) else None
    if not isinstance(body, dict) or "Servo" not in body or "Motor" not in body:
        raise CalibrationError('calibration.json: expected {"Calibration": {"Servo": {...}, "Motor": {...}}}')
    return Calibration(_channel(body["Servo"], "steering"), _channel(body["Motor"], "throttle"))


def load_calibration(path: Path) -> Calibration:
    """Read a calibration file in either shape; a missing file gives the stock defaults."""
    if not path.exists():
        return STOCK
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CalibrationError(f"{path}: cannot be read as JSON ({error})") from error
    if isinstance(data, dict) and "Calibration" in data:
        return parse_stock_calibration(data)
    return parse_calibration(data)


def save_calibration(calibration: Calibration, path: Path) -> None:
    """Written in the stock format (atomically), so stock tools read it too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(calibration.to_stock_json(), indent=2))
    tmp.replace(path)
