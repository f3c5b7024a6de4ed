"""What a race accepts as an entry: the rules of a submission, without the storage around them.

The built-in reference driver (pure pursuit at a fixed speed) races where a racer has no model:
its speed must be one the car can drive. A LIVE race's entry waits for the organizer's queue
(``entered``); a classic race's is evaluated by the server (``queued``), or shown as a red row
(``failed``) when its model cannot be loaded.
"""

from __future__ import annotations

from typing import Any, Literal

from race_server.races.config import RaceFormat, RaceStatus

REFERENCE_SPEED_DEFAULT = 1.5  # m/s
REFERENCE_SPEED_MIN = 0.1
REFERENCE_SPEED_MAX = 4.0  # the car's top speed (SPEC: action space speed limit)

SubmissionState = Literal["entered", "queued", "evaluating", "evaluated", "failed"]


class SubmissionRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def reference_driver(speed: Any = REFERENCE_SPEED_DEFAULT) -> dict[str, Any]:
    """The stored driver of a reference entry; refuses a speed the car cannot drive."""
    if (
        isinstance(speed, bool)
        or not isinstance(speed, int | float)
        or not (REFERENCE_SPEED_MIN <= speed <= REFERENCE_SPEED_MAX)
    ):
        raise SubmissionRefused(
            "invalid", f"reference_speed must be {REFERENCE_SPEED_MIN:g}-{REFERENCE_SPEED_MAX:g} m/s"
        )
    return {"kind": "reference", "reference_speed": float(speed)}


def reference_speed_of(driver: dict[str, Any]) -> float:
    return float(driver.get("reference_speed", REFERENCE_SPEED_DEFAULT))


def check_open(status: RaceStatus) -> None:
    if status != "open":
        raise SubmissionRefused(
            f"race_{status}", f"submissions are accepted only while the race is open (it is {status})"
        )


def initial_state(race_format: RaceFormat, load_error: str | None) -> SubmissionState:
    if race_format != "classic":
        return "entered"
    return "failed" if load_error else "queued"
