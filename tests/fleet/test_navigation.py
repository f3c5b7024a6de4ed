"""The stock navigation mapping: steering normalised by the max angle, the quadratic
speed→throttle curve through (0,0), (max/2, 0.8), (max, 1), continuous rescaling, max speed %."""

from __future__ import annotations

import pytest

from car_client.navigation import (
    ModelError,
    map_output,
    parse_action_space,
    rescale,
    speed_coefficients,
    steering_for_angle,
    throttle_for_speed,
)

DISCRETE = {
    "action_space_type": "discrete",
    "sensor": ["FRONT_FACING_CAMERA"],
    "action_space": [
        {"steering_angle": -30, "speed": 0.6},
        {"steering_angle": 0, "speed": 1.2},
        {"steering_angle": 15, "speed": 2.4},
    ],
}
CONTINUOUS = {
    "action_space_type": "continuous",
    "sensor": ["STEREO_CAMERAS"],
    "action_space": {"steering_angle": {"low": -20, "high": 20}, "speed": {"low": 0.5, "high": 3.0}},
}


@pytest.mark.parametrize("max_speed", [1.0, 2.4, 4.0])
def test_the_speed_curve_passes_through_the_three_stock_points(max_speed: float) -> None:
    a, b = speed_coefficients(max_speed)
    assert a * 0 + b * 0 == 0
    assert a * (max_speed / 2) ** 2 + b * (max_speed / 2) == pytest.approx(0.8)
    assert a * max_speed**2 + b * max_speed == pytest.approx(1.0)
    assert throttle_for_speed(max_speed, max_speed, 1.0) == pytest.approx(1.0)
    assert throttle_for_speed(max_speed / 2, max_speed, 0.5) == pytest.approx(0.4)  # max-speed percentage


def test_steering_is_normalised_by_the_action_space_max_angle() -> None:
    space = parse_action_space(DISCRETE)
    assert space.max_angle == 30 and space.max_speed == 2.4
    assert steering_for_angle(15, space.max_angle) == 0.5
    assert steering_for_angle(-45, 30) == -1.0


def test_discrete_outputs_pick_the_argmax_action() -> None:
    space = parse_action_space(DISCRETE)
    command = map_output(space, [0.1, 0.7, 0.2], max_speed_pct=1.0)
    assert command.action == 1 and command.angle == 0 and command.speed == 1.2
    assert command.steering == 0 and command.throttle == pytest.approx(0.8)
    left = map_output(space, [0.0, 0.1, 0.9], max_speed_pct=0.5)
    assert left.steering == 0.5 and left.throttle == pytest.approx(0.5)


def test_continuous_outputs_are_rescaled_from_minus_one_one() -> None:
    space = parse_action_space(CONTINUOUS)
    assert rescale(-1, 0.5, 3.0) == 0.5 and rescale(1, 0.5, 3.0) == 3.0 and rescale(0, -20, 20) == 0
    command = map_output(space, [0.5, 0.0], max_speed_pct=1.0)
    assert command.action is None and command.angle == 10 and command.steering == 0.5
    assert command.speed == 1.75
    a, b = speed_coefficients(3.0)
    assert command.throttle == pytest.approx(a * 1.75**2 + b * 1.75)


def test_the_speed_multiplier_scales_the_models_speed_before_the_curve() -> None:
    space = parse_action_space(DISCRETE)
    slow = map_output(space, [0, 1, 0], max_speed_pct=1.0, multiplier=0.5)
    assert slow.throttle == pytest.approx(throttle_for_speed(0.6, 2.4, 1.0))
    fast = map_output(space, [0, 1, 0], max_speed_pct=1.0, multiplier=2.0)
    assert fast.throttle == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({**DISCRETE, "sensor": ["FRONT_FACING_CAMERA", "LIDAR"]}, "exactly one camera"),
        ({**DISCRETE, "action_space": []}, "non-empty list"),
        ({**DISCRETE, "action_space": [{"steering_angle": 0, "speed": 0}]}, "speed 0"),
        ({**CONTINUOUS, "action_space": {"steering_angle": {"low": 1, "high": -1}, "speed": {"low": 1, "high": 2}}},
         "high must be greater than low"),
        ({**DISCRETE, "action_space_type": "hybrid"}, "allowed values: discrete, continuous"),
    ],
)  # fmt: skip
def test_models_the_car_cannot_drive_are_refused(metadata: dict[str, object], message: str) -> None:
    with pytest.raises(ModelError, match=message):
        parse_action_space(metadata)


def test_wrong_output_width_is_an_error() -> None:
    with pytest.raises(ModelError, match="needs 3"):
        map_output(parse_action_space(DISCRETE), [1.0, 2.0], max_speed_pct=1.0)
