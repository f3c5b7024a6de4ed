"""Websocket protocol: every client message parses (JSON and msgpack), every malformed input gets
its error code, server messages round-trip."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest

from race_server import protocol
from race_server.protocol import (
    CLIENT_TYPES,
    ORGANIZER_COMMANDS,
    ProtocolError,
    decode_server_message,
    encode_server_message,
    parse_client_message,
)

VALID: dict[str, dict[str, Any]] = {
    "ping": {},
    "subscribe": {"race_id": 3, "last_event_id": 41},
    "unsubscribe": {"race_id": 3},
    "speed_control": {"race_id": 3, "multiplier": 1.25},
    "launch_simulator": {"race_id": 3},
    "reset_simulator": {"race_id": 3},
    "set_entries_open": {"race_id": 3, "open": False},
    "begin_queue_edit": {"race_id": 3},
    "save_queue": {"race_id": 3, "order": [12, 11], "version": 4},
    "cancel_queue_edit": {"race_id": 3},
    "launch_racer": {"race_id": 3, "racer_id": 12},
    "relaunch_racer": {"race_id": 3, "racer_id": 12},
    "clear_leaderboard": {"race_id": 3},
    "declare_winner": {"race_id": 3},
}


def msg(kind: str, **fields: Any) -> dict[str, Any]:
    return {"v": 1, "type": kind, "req": "r1", **fields}


def test_the_table_covers_every_client_type() -> None:
    assert set(VALID) == set(CLIENT_TYPES)
    assert "launch_racer" in ORGANIZER_COMMANDS and "speed_control" not in ORGANIZER_COMMANDS


@pytest.mark.parametrize("kind", sorted(VALID))
@pytest.mark.parametrize("fmt", ["json-text", "json-bytes", "msgpack"])
def test_every_client_message_parses(kind: str, fmt: str) -> None:
    data = msg(kind, **VALID[kind])
    raw: str | bytes = json.dumps(data)
    if fmt == "json-bytes":
        raw = b"  " + json.dumps(data).encode()
    elif fmt == "msgpack":
        raw = bytes(msgpack.packb(data))
    parsed = parse_client_message(raw)
    assert parsed.type == kind and parsed.req == "r1"
    assert parsed.model_dump() == data


def test_speed_steps_are_normalised_and_int_req_is_kept() -> None:
    parsed = parse_client_message(json.dumps({**msg("speed_control", race_id=1, multiplier=0.7000000001), "req": 7}))
    assert isinstance(parsed, protocol.SpeedControl) and parsed.multiplier == 0.7 and parsed.req == 7
    assert parse_client_message(json.dumps(msg("speed_control", race_id=1, multiplier=2))).multiplier == 2.0  # type: ignore[union-attr]
    assert parse_client_message(json.dumps(msg("subscribe", race_id=1))).last_event_id is None  # type: ignore[union-attr]


MALFORMED: list[tuple[str, str | bytes, str, str, str | int | None]] = [
    ("not-json", "{not json", "bad_encoding", "not valid JSON", None),
    ("nan", '{"v":1,"type":"ping","req":"a","x":NaN}', "bad_encoding", "NaN is not allowed", None),
    ("bad-utf8", b"{\xff}", "bad_encoding", "not valid JSON", None),
    ("bad-msgpack", b"\xc1", "bad_encoding", "not valid msgpack", None),
    ("msgpack-trailing", msgpack.packb({"v": 1}) + b"\x01", "bad_encoding", "not valid msgpack", None),
    ("too-large", json.dumps(msg("ping", pad="x" * 70_000)), "too_large", "at most 65536 bytes", None),
    ("array", "[1, 2]", "not_an_object", "not list", None),
    ("msgpack-int", msgpack.packb(5), "not_an_object", "not int", None),
    ("no-version", json.dumps({"type": "ping", "req": "a"}), "version_mismatch", "missing 'v'", "a"),
    ("version-2", json.dumps({**msg("ping"), "v": 2}), "version_mismatch", "unsupported protocol version 2", "r1"),
    ("version-true", json.dumps({**msg("ping"), "v": True}), "version_mismatch", "version True", "r1"),
    ("no-type", json.dumps({"v": 1, "req": "a"}), "missing_field", "type: required", "a"),
    ("type-not-string", json.dumps({"v": 1, "type": 5, "req": "a"}), "wrong_type", "type: 5 is not a string", "a"),
    ("unknown-type", json.dumps(msg("fly")), "unknown_type", "unknown message type 'fly'; allowed types:", "r1"),
    ("no-req", json.dumps({"v": 1, "type": "ping"}), "missing_field", "ping.req: required field is missing", None),
    ("req-bool", json.dumps({"v": 1, "type": "ping", "req": True}), "wrong_type", "ping.req: True", None),
    ("req-empty", json.dumps({"v": 1, "type": "ping", "req": ""}), "out_of_range", "ping.req: ''", ""),
    ("missing-race", json.dumps(msg("launch_racer", racer_id=3)), "missing_field",
     "launch_racer.race_id: required field is missing", "r1"),
    ("race-id-string", json.dumps(msg("subscribe", race_id="3")), "wrong_type", "subscribe.race_id: '3'", "r1"),
    ("race-id-zero", json.dumps(msg("subscribe", race_id=0)), "out_of_range", "subscribe.race_id: 0", "r1"),
    ("last-event-negative", json.dumps(msg("subscribe", race_id=1, last_event_id=-1)), "out_of_range",
     "subscribe.last_event_id: -1", "r1"),
    ("speed-high", json.dumps(msg("speed_control", race_id=1, multiplier=2.05)), "out_of_range",
     "speed_control.multiplier: 2.05: not on the slider; allowed values: 0.5 to 2.0 in steps of 0.05", "r1"),
    ("speed-low", json.dumps(msg("speed_control", race_id=1, multiplier=0.45)), "out_of_range", "not on the slider",
     "r1"),
    ("speed-off-step", json.dumps(msg("speed_control", race_id=1, multiplier=1.13)), "out_of_range",
     "not on the slider", "r1"),
    ("speed-string", json.dumps(msg("speed_control", race_id=1, multiplier="fast")), "wrong_type",
     "speed_control.multiplier: 'fast'", "r1"),
    ("speed-bool", json.dumps(msg("speed_control", race_id=1, multiplier=True)), "wrong_type",
     "speed_control.multiplier: True", "r1"),
    ("open-not-bool", json.dumps(msg("set_entries_open", race_id=1, open="no")), "wrong_type",
     "set_entries_open.open: 'no'", "r1"),
    ("order-not-list", json.dumps(msg("save_queue", race_id=1, order="12,11", version=1)), "wrong_type",
     "save_queue.order: '12,11'", "r1"),
    ("order-item", json.dumps(msg("save_queue", race_id=1, order=[12, "x"], version=1)), "wrong_type",
     "save_queue.order[1]: 'x'", "r1"),
    ("no-version-field", json.dumps(msg("save_queue", race_id=1, order=[12])), "missing_field",
     "save_queue.version: required field is missing", "r1"),
    ("extra-field", json.dumps(msg("launch_simulator", race_id=1, force=True)), "unexpected_field",
     "launch_simulator.force: unexpected field", "r1"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "code", "words", "req"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_every_malformed_input_gets_its_error(raw: str | bytes, code: str, words: str, req: str | int | None) -> None:
    with pytest.raises(ProtocolError) as raised:
        parse_client_message(raw)
    assert raised.value.code == code
    assert words in raised.value.message
    assert raised.value.req == req
    assert raised.value.reply() == {"v": 1, "type": "error", "req": req, "code": code, "message": raised.value.message}


SERVER_SAMPLES: list[dict[str, Any]] = [
    {"type": "ok", "req": "r1"},
    {"type": "error", "req": 5, "code": "stale_version", "message": "The queue changed"},
    {"type": "snapshot", "race": {"name": "x"}, "queue": {"version": 2}, "leaderboard": [
        {"rank": 1, "racer_id": 2, "racer_name": None, "time_ms": 8123.0, "gap_ms": 0.0, "off_track": 0,
         "collisions": 0, "laps": 3, "run_id": 1}], "run": None, "last_event_id": 7},
    {"type": "simulator", "status": "launching", "stage": "set"},
    {"type": "entries", "open": False},
    {"type": "queue", "version": 3, "entries": [{"racer_id": 1, "model_id": 9, "red": True, "error": "bad"}]},
    {"type": "queue_edit", "editor": "tab", "action": "saved", "version": 4},
    {"type": "run_launched", "run_id": 1, "racer_id": 2, "model_id": 3, "relaunch": False, "countdown_s": 10,
     "slot_s": 180.0},
    {"type": "countdown", "run_id": 1, "racer_id": 2, "value": 10},
    {"type": "run_started", "run_id": 1, "racer_id": 2, "slot_s": 180},
    {"type": "checkered", "run_id": 1, "racer_id": 2, "replay_s": 15},
    {"type": "run_failed", "run_id": 1, "racer_id": 2, "reason": "crash", "at_s": 3.5},
    {"type": "replay_ended", "run_id": 1, "racer_id": 2},
    {"type": "up_next", "racer_id": None},
    {"type": "leaderboard_cleared"},
    {"type": "winner_declared", "racer_id": 2},
    {"type": "sector", "run_id": 1, "racer_id": 2, "lap": 1, "sector": 0, "time_ms": 3000, "colour": "purple"},
    {"type": "lap", "run_id": 1, "racer_id": 2, "lap": 1, "time_ms": 9000, "valid": True, "colour": "green",
     "reason": None, "sectors_ms": [3000, 3000, 3000], "off_track": 0, "collisions": 0, "resets": 0, "order": 1},
    {"type": "penalty", "run_id": 1, "racer_id": 2, "kind": "crash", "seconds": 3, "resets": 1, "off_track": 0,
     "collisions": 1},
    {"type": "attempt_ended", "run_id": 1, "racer_id": 2, "lap": 2, "reason": "off_track"},
    {"type": "telemetry", "run_id": 1, "racer_id": 2, "t": 1.5, "speed": 2.1, "progress": 12.5, "multiplier": 1.5,
     "lap": 1, "sector": 0, "lap_time_ms": 1500, "time_remaining_ms": 178500, "resets": 0, "off_track": 0,
     "collisions": 0, "laps": 0},
    {"type": "leaderboard", "rows": []},
    {"type": "speed", "racer_id": 2, "multiplier": 0.5, "race_id": 3, "event_id": 99},
]  # fmt: skip


def test_the_server_samples_cover_every_server_type() -> None:
    assert {sample["type"] for sample in SERVER_SAMPLES} == protocol.SERVER_TYPES


@pytest.mark.parametrize("sample", SERVER_SAMPLES, ids=[s["type"] for s in SERVER_SAMPLES])
def test_server_messages_round_trip_in_both_formats(sample: dict[str, Any]) -> None:
    text = encode_server_message(sample, "json")
    packed = encode_server_message(sample, "msgpack")
    assert isinstance(text, str) and isinstance(packed, bytes)
    assert json.loads(text)["v"] == 1
    assert decode_server_message(text) == decode_server_message(packed)
    assert decode_server_message(text).type == sample["type"]


def test_invalid_server_messages_are_refused() -> None:
    with pytest.raises(ProtocolError) as raised:
        encode_server_message({"type": "countdown", "run_id": 1, "racer_id": 2, "value": 0})
    assert raised.value.code == "out_of_range"
    with pytest.raises(ProtocolError, match="unknown server message type"):
        encode_server_message({"type": "nope"})
    with pytest.raises(ProtocolError) as missing:
        encode_server_message({"type": "lap", "run_id": 1, "racer_id": 2})
    assert missing.value.code == "missing_field"
    with pytest.raises(ProtocolError, match="version"):
        decode_server_message(json.dumps({"v": 9, "type": "ok", "req": "a"}))
    with pytest.raises(ValueError, match="fmt"):
        encode_server_message({"type": "ok", "req": "a"}, "xml")  # type: ignore[call-overload]
    typed = protocol.Ok(req="a")
    assert encode_server_message(typed) == '{"v":1,"race_id":null,"event_id":null,"type":"ok","req":"a"}'
