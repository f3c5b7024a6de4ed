"""The car link's messages: one schema both ways, the race websocket's error codes and size limit."""

from __future__ import annotations

import json

import pytest

from race_server import protocol as p
from tests.fleet.helpers import hello_frame


def test_both_directions_round_trip() -> None:
    hello = p.parse_car_message(hello_frame())
    assert isinstance(hello, p.CarHello) and hello.calibration.steering.mid == 1_450_000
    command = p.parse_car_command(p.encode_car_frame(p.SetMaxSpeed(req="s1", value=0.5)))
    assert isinstance(command, p.SetMaxSpeed) and command.value == 0.5
    beat = p.parse_car_message(json.dumps({"v": 1, "type": "heartbeat", "seq": 3, "t": 1.5}))
    assert isinstance(beat, p.CarHeartbeat) and beat.echo_t is None


@pytest.mark.parametrize(
    ("frame", "code", "words"),
    [
        ("x" * (p.MAX_MESSAGE_BYTES + 1), "too_large", "at most 65536 bytes"),
        ("{nope", "bad_encoding", "not valid JSON"),
        ("[1]", "not_an_object", "must be an object"),
        ('{"v": 2, "type": "heartbeat", "req": 4}', "version_mismatch", "speaks 1"),
        ('{"v": 1, "type": "fly", "req": 4}', "unknown_type", "allowed types"),
        ('{"v": 1, "type": "drive", "req": 4, "angle": 0.1, "throttle": 1.5}', "out_of_range", "drive.throttle"),
        ('{"v": 1, "type": "drive", "req": 4, "angle": 0.1}', "missing_field", "drive.throttle"),
        ('{"v": 1, "type": "tail_light", "req": 4, "colour": "red"}', "wrong_type", "tail_light.colour"),
        ('{"v": 1, "type": "arm", "req": 4, "force": true}', "unexpected_field", "arm.force"),
    ],
)
def test_bad_frames_get_the_race_websockets_codes(frame: str, code: str, words: str) -> None:
    with pytest.raises(p.ProtocolError) as caught:
        p.parse_car_command(frame)
    assert caught.value.code == code and words in caught.value.message
    if code not in ("too_large", "bad_encoding", "not_an_object"):
        assert caught.value.req == 4  # the reply names the command it answers


def test_a_car_message_is_not_a_server_command() -> None:
    with pytest.raises(p.ProtocolError, match="unknown message type 'car_hello'"):
        p.parse_car_command(hello_frame())
