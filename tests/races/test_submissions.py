"""Entry rules: the reference driver's speed, when a race takes entries, an entry's first state."""

from __future__ import annotations

import pytest

from race_server.races.submissions import (
    SubmissionRefused,
    check_open,
    initial_state,
    reference_driver,
    reference_speed_of,
)


@pytest.mark.parametrize("speed", [0.1, 1, 2.5, 4.0])
def test_a_reference_speed_the_car_can_drive_is_stored_as_a_float(speed: float) -> None:
    driver = reference_driver(speed)
    assert driver == {"kind": "reference", "reference_speed": float(speed)}
    assert reference_speed_of(driver) == float(speed)


@pytest.mark.parametrize("speed", [0.09, 4.01, -1, True, "2", None, float("nan")])
def test_any_other_reference_speed_is_refused_with_its_range(speed: object) -> None:
    with pytest.raises(SubmissionRefused, match=r"0\.1-4 m/s") as refused:
        reference_driver(speed)
    assert refused.value.code == "invalid"


def test_the_default_reference_speed_is_1_5() -> None:
    assert reference_speed_of({"kind": "reference"}) == 1.5 == reference_driver()["reference_speed"]


@pytest.mark.parametrize("status", ["opening_soon", "closed"])
def test_entries_only_while_open(status: str) -> None:
    check_open("open")
    with pytest.raises(SubmissionRefused) as refused:
        check_open(status)  # type: ignore[arg-type]
    assert refused.value.code == f"race_{status}"


def test_live_entries_wait_for_the_queue_and_classic_ones_for_the_evaluator() -> None:
    assert initial_state("live", None) == initial_state("live", "no model.onnx") == "entered"
    assert initial_state("classic", None) == "queued"
    assert initial_state("classic", "no model.onnx") == "failed"
