"""Every websocket message, shared by the server, web/ and car_client/ (pure: pydantic + msgpack).

Framing: a text frame is JSON, a binary frame is msgpack (a binary frame that starts with ``{``
is read as UTF-8 JSON). Every message is an object with ``"v": 1`` and a ``"type"``. Identity
comes from the cookie or token presented at connect, never from a message.

Client → server: each message carries ``req`` (a client-chosen id, string or integer), answered by
``{"type": "ok", "req"}`` or ``{"type": "error", "req", "code", "message"}``.
  ping; subscribe {race_id, last_event_id?}; unsubscribe {race_id};
  speed_control {race_id, multiplier 0.5-2.0 in 0.05 steps};
  organizer commands (``ORGANIZER_COMMANDS``), each with race_id: launch_simulator, reset_simulator,
  set_entries_open {open}, begin_queue_edit, save_queue {order, version}, cancel_queue_edit,
  launch_racer {racer_id}, relaunch_racer {racer_id}, clear_leaderboard, declare_winner.

Server → client (``race_id`` and ``event_id`` optional on all; the persisting service sets them):
  ok, error, snapshot (on join), simulator, entries, queue, queue_edit, run_launched, countdown,
  run_started (Go), checkered, run_failed, replay_ended, up_next, leaderboard_cleared,
  winner_declared, sector, lap, penalty, attempt_ended, telemetry, leaderboard, speed.
  The queue machine's and the timing's event dicts are exactly these payloads.

``parse_client_message(raw)`` returns a typed message or raises ``ProtocolError(code, message,
req)`` with codes: too_large, bad_encoding, not_an_object, version_mismatch, missing_field,
unknown_type, wrong_type, out_of_range, unexpected_field. ``encode_server_message(msg, fmt)``
validates (a dict is checked against the schema too) and returns str (json) or bytes (msgpack).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeAlias, overload

import msgpack
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from race_server.input_guard import UnsafeInput, check_value, parse_json

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024
SPEED_MIN, SPEED_MAX, SPEED_STEP = 0.5, 2.0, 0.05
Format = Literal["json", "msgpack"]


class ProtocolError(ValueError):
    """A malformed message; ``req`` is the client's id when it could be read (for the reply)."""

    def __init__(self, code: str, message: str, req: str | int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.req = req

    def reply(self) -> dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "type": "error", "req": self.req, "code": self.code, "message": self.message}


Req = Annotated[str, Field(min_length=1, max_length=64)] | Annotated[int, Field(ge=0, le=2**53)]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Count = Annotated[int, Field(ge=0, le=2**63 - 1)]
Ms = Annotated[int, Field(ge=0)]


class _Message(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    v: Literal[1] = 1


# --- client → server ---------------------------------------------------------------------------
class _ClientMessage(_Message):
    req: Req


class _RaceCommand(_ClientMessage):
    race_id: Id


class Ping(_ClientMessage):
    type: Literal["ping"] = "ping"


class Subscribe(_RaceCommand):
    type: Literal["subscribe"] = "subscribe"
    last_event_id: Count | None = None  # resume after this event (replayed from the log)


class Unsubscribe(_RaceCommand):
    type: Literal["unsubscribe"] = "unsubscribe"


class SpeedControl(_RaceCommand):
    """Multiplier on the model's speed (never steering); 1.0 returns to the model's speeds."""

    type: Literal["speed_control"] = "speed_control"
    multiplier: float

    @field_validator("multiplier")
    @classmethod
    def _on_the_slider(cls, value: float) -> float:
        steps = (value - SPEED_MIN) / SPEED_STEP
        if (
            not math.isfinite(value)
            or not SPEED_MIN - 1e-9 <= value <= SPEED_MAX + 1e-9
            or abs(steps - round(steps)) > 1e-6
        ):
            raise PydanticCustomError(
                "out_of_range",
                "not on the slider; allowed values: 0.5 to 2.0 in steps of 0.05",
                {"value": value},
            )
        return round(SPEED_MIN + round(steps) * SPEED_STEP, 2)


class LaunchSimulator(_RaceCommand):
    type: Literal["launch_simulator"] = "launch_simulator"


class ResetSimulator(_RaceCommand):
    type: Literal["reset_simulator"] = "reset_simulator"


class SetEntriesOpen(_RaceCommand):
    type: Literal["set_entries_open"] = "set_entries_open"
    open: bool


class BeginQueueEdit(_RaceCommand):
    type: Literal["begin_queue_edit"] = "begin_queue_edit"


class SaveQueue(_RaceCommand):
    type: Literal["save_queue"] = "save_queue"
    order: Annotated[list[Id], Field(max_length=10_000)]
    version: Count


class CancelQueueEdit(_RaceCommand):
    type: Literal["cancel_queue_edit"] = "cancel_queue_edit"


class LaunchRacer(_RaceCommand):
    type: Literal["launch_racer"] = "launch_racer"
    racer_id: Id


class RelaunchRacer(_RaceCommand):
    type: Literal["relaunch_racer"] = "relaunch_racer"
    racer_id: Id


class ClearLeaderboard(_RaceCommand):
    type: Literal["clear_leaderboard"] = "clear_leaderboard"


class DeclareWinner(_RaceCommand):
    type: Literal["declare_winner"] = "declare_winner"


ClientMessage: TypeAlias = (
    Ping
    | Subscribe
    | Unsubscribe
    | SpeedControl
    | LaunchSimulator
    | ResetSimulator
    | SetEntriesOpen
    | BeginQueueEdit
    | SaveQueue
    | CancelQueueEdit
    | LaunchRacer
    | RelaunchRacer
    | ClearLeaderboard
    | DeclareWinner
)
CLIENT_TYPES: dict[str, type[_ClientMessage]] = {
    cls.model_fields["type"].default: cls
    for cls in (
        Ping,
        Subscribe,
        Unsubscribe,
        SpeedControl,
        LaunchSimulator,
        ResetSimulator,
        SetEntriesOpen,
        BeginQueueEdit,
        SaveQueue,
        CancelQueueEdit,
        LaunchRacer,
        RelaunchRacer,
        ClearLeaderboard,
        DeclareWinner,
    )
}
ORGANIZER_COMMANDS: frozenset[str] = frozenset(CLIENT_TYPES) - {"ping", "subscribe", "unsubscribe", "speed_control"}


# --- server → client ---------------------------------------------------------------------------
class _ServerMessage(_Message):
    race_id: Id | None = None
    event_id: Count | None = None


class Ok(_ServerMessage):
    type: Literal["ok"] = "ok"
    req: Req


class Error(_ServerMessage):
    type: Literal["error"] = "error"
    req: Req | None = None
    code: str
    message: str


class QueueEntryInfo(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    racer_id: Id
    model_id: Id
    red: bool = False
    error: str | None = None
    relaunch: bool = False


class LeaderboardRowInfo(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    rank: Annotated[int, Field(ge=1)]
    racer_id: Id
    racer_name: str | None = None
    time_ms: Annotated[float, Field(ge=0)]
    gap_ms: Annotated[float, Field(ge=0)]
    off_track: Count
    collisions: Count
    laps: Count
    run_id: Id


class Snapshot(_ServerMessage):
    """Everything a joining client needs: race settings, queue state, leaderboard, current run."""

    type: Literal["snapshot"] = "snapshot"
    last_event_id: Count | None = None
    race: dict[str, Any]
    queue: dict[str, Any] | None = None
    leaderboard: list[LeaderboardRowInfo] = []
    run: dict[str, Any] | None = None


class SimulatorInfo(_ServerMessage):
    type: Literal["simulator"] = "simulator"
    status: Literal["not_created", "launching", "running", "failed"]
    stage: Literal["ready", "set", "go"] | None = None
    reason: str | None = None


class Entries(_ServerMessage):
    type: Literal["entries"] = "entries"
    open: bool


class Queue(_ServerMessage):
    type: Literal["queue"] = "queue"
    version: Count
    entries: list[QueueEntryInfo]


class QueueEdit(_ServerMessage):
    type: Literal["queue_edit"] = "queue_edit"
    editor: str
    action: Literal["started", "cancelled", "saved"]
    version: Count


class _RunMessage(_ServerMessage):
    run_id: Id
    racer_id: Id


class RunLaunched(_RunMessage):
    type: Literal["run_launched"] = "run_launched"
    model_id: Id
    relaunch: bool
    countdown_s: Count
    slot_s: Annotated[float, Field(gt=0)]


class Countdown(_RunMessage):
    type: Literal["countdown"] = "countdown"
    value: Annotated[int, Field(ge=1)]


class RunStarted(_RunMessage):
    """Go: the racer's clock starts and speed control opens."""

    type: Literal["run_started"] = "run_started"
    slot_s: Annotated[float, Field(gt=0)]


class Checkered(_RunMessage):
    """The slot is over: speed control closes and the replay starts."""

    type: Literal["checkered"] = "checkered"
    replay_s: Annotated[float, Field(ge=0)]


class RunFailed(_RunMessage):
    type: Literal["run_failed"] = "run_failed"
    reason: str
    at_s: Annotated[float, Field(ge=0)]


class ReplayEnded(_RunMessage):
    type: Literal["replay_ended"] = "replay_ended"


class UpNext(_ServerMessage):
    type: Literal["up_next"] = "up_next"
    racer_id: Id | None


class LeaderboardCleared(_ServerMessage):
    type: Literal["leaderboard_cleared"] = "leaderboard_cleared"


class WinnerDeclared(_ServerMessage):
    type: Literal["winner_declared"] = "winner_declared"
    racer_id: Id


Colour = Literal["purple", "green", "yellow"]


class SectorTime(_RunMessage):
    type: Literal["sector"] = "sector"
    lap: Annotated[int, Field(ge=1)]
    sector: Count
    time_ms: Ms
    colour: Colour


class LapTime(_RunMessage):
    type: Literal["lap"] = "lap"
    lap: Annotated[int, Field(ge=1)]
    time_ms: Ms
    valid: bool
    colour: Literal["purple", "green", "yellow", "red"]
    reason: str | None = None
    sectors_ms: list[Ms]
    off_track: Count
    collisions: Count
    resets: Count
    order: float
    emitted_at: float | None = None  # wall clock (Unix s) when the simulator emitted it: fan-out latency


class Penalty(_RunMessage):
    type: Literal["penalty"] = "penalty"
    kind: Literal["off_track", "crash", "reversed", "immobilised"]
    seconds: Annotated[float, Field(ge=0, le=30)]
    resets: Count
    off_track: Count
    collisions: Count


class AttemptEnded(_RunMessage):
    type: Literal["attempt_ended"] = "attempt_ended"
    lap: Annotated[int, Field(ge=1)]
    reason: str


class Telemetry(_RunMessage):
    """The on-track car, 15 Hz for the racer, throttled for spectators."""

    type: Literal["telemetry"] = "telemetry"
    t: float  # sim seconds since Go
    speed: float  # m/s
    progress: Annotated[float, Field(ge=0, le=100)]
    multiplier: Annotated[float, Field(ge=SPEED_MIN, le=SPEED_MAX)] = 1.0
    x: float | None = None
    y: float | None = None
    heading: float | None = None
    lap: Annotated[int, Field(ge=1)]
    sector: Count
    lap_time_ms: Ms
    time_remaining_ms: Ms
    penalty_remaining_ms: Ms = 0
    best_lap_ms: Ms | None = None
    last_lap_ms: Ms | None = None
    sector_colours: list[Colour] = []
    resets: Count
    off_track: Count
    collisions: Count
    laps: Count
    tick_at: float | None = None  # wall clock (Unix s) when this tick started: speed-control latency
    tick_late_ms: Annotated[float, Field(ge=0)] | None = None  # how late this tick started against the 15 Hz grid


class Leaderboard(_ServerMessage):
    type: Literal["leaderboard"] = "leaderboard"
    rows: list[LeaderboardRowInfo]


class Speed(_ServerMessage):
    type: Literal["speed"] = "speed"
    racer_id: Id
    multiplier: Annotated[float, Field(ge=SPEED_MIN, le=SPEED_MAX)]
    applied_at: float | None = None  # wall clock (Unix s) when the simulator applied it


ServerMessage: TypeAlias = (
    Ok
    | Error
    | Snapshot
    | SimulatorInfo
    | Entries
    | Queue
    | QueueEdit
    | RunLaunched
    | Countdown
    | RunStarted
    | Checkered
    | RunFailed
    | ReplayEnded
    | UpNext
    | LeaderboardCleared
    | WinnerDeclared
    | SectorTime
    | LapTime
    | Penalty
    | AttemptEnded
    | Telemetry
    | Leaderboard
    | Speed
)
_SERVER_ADAPTER: TypeAdapter[ServerMessage] = TypeAdapter(Annotated[ServerMessage, Field(discriminator="type")])
SERVER_TYPES: frozenset[str] = frozenset(
    cls.model_fields["type"].default
    for cls in (
        Ok, Error, Snapshot, SimulatorInfo, Entries, Queue, QueueEdit, RunLaunched, Countdown, RunStarted,
        Checkered, RunFailed, ReplayEnded, UpNext, LeaderboardCleared, WinnerDeclared, SectorTime, LapTime,
        Penalty, AttemptEnded, Telemetry, Leaderboard, Speed,
    )
)  # fmt: skip


# --- decoding and encoding ---------------------------------------------------------------------
def _decode(raw: bytes | str) -> Any:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError("too_large", f"message of {len(raw)} bytes; allowed: at most {MAX_MESSAGE_BYTES} bytes")
    if isinstance(raw, bytes) and raw.lstrip()[:1] != b"{":
        try:
            return check_value(msgpack.unpackb(raw, raw=False, strict_map_key=True))
        except UnsafeInput as error:
            raise ProtocolError("bad_encoding", f"binary frame is not acceptable ({error})") from None
        except (ValueError, TypeError, msgpack.UnpackException) as error:
            raise ProtocolError("bad_encoding", f"binary frame is not valid msgpack ({error})") from error
    try:
        return parse_json(raw)
    except UnsafeInput as error:
        # Bounded nesting, no NUL or lone surrogate, integers within int64 (race_server.input_guard).
        raise ProtocolError("bad_encoding", f"message is not acceptable JSON ({error})") from None


_CODES = {
    "missing": "missing_field",
    "extra_forbidden": "unexpected_field",
    "out_of_range": "out_of_range",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "too_long": "out_of_range",
    "too_short": "out_of_range",
    "string_too_long": "out_of_range",
    "string_too_short": "out_of_range",
}


def _location(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in ("int", "str", "float", "bool", "list[int]") and not str(part).startswith(
            ("constrained", "function")
        ):
            path += f".{part}" if path else str(part)
    return path


def _translate(kind: str, error: ValidationError, req: str | int | None) -> ProtocolError:
    details = error.errors(include_url=False)
    codes = [_CODES.get(str(d["type"]), "wrong_type") for d in details]
    # A union (req: str | int) reports one error per member; report the field once.
    seen: dict[str, str] = {}
    for detail, code in zip(details, codes, strict=True):
        field = _location(tuple(detail["loc"]))
        if field in seen:
            continue
        if code == "missing_field":
            seen[field] = f"{kind}.{field}: required field is missing"
        elif code == "unexpected_field":
            seen[field] = f"{kind}.{field}: unexpected field"
        else:
            seen[field] = f"{kind}.{field}: {detail['input']!r}: {detail['msg']}"
    return ProtocolError(codes[0], "; ".join(seen.values()), req)


def parse_client_message(raw: bytes | str) -> ClientMessage:
    """Decode and validate one client frame (see the module docstring for the error codes)."""
    data = _decode(raw)
    if not isinstance(data, dict):
        raise ProtocolError("not_an_object", f"a message must be an object, not {type(data).__name__}")
    req = data.get("req")
    if isinstance(req, bool) or not isinstance(req, str | int):
        req = None
    if "v" not in data:
        raise ProtocolError(
            "version_mismatch", f"missing 'v'; this server speaks protocol version {PROTOCOL_VERSION}", req
        )
    version = data["v"]
    if isinstance(version, bool) or version != PROTOCOL_VERSION:
        raise ProtocolError(
            "version_mismatch",
            f"unsupported protocol version {version!r}; this server speaks version {PROTOCOL_VERSION}",
            req,
        )
    kind = data.get("type")
    if kind is None:
        raise ProtocolError("missing_field", "type: required field is missing", req)
    if not isinstance(kind, str):
        raise ProtocolError("wrong_type", f"type: {kind!r} is not a string", req)
    model = CLIENT_TYPES.get(kind)
    if model is None:
        raise ProtocolError(
            "unknown_type", f"unknown message type {kind!r}; allowed types: {', '.join(sorted(CLIENT_TYPES))}", req
        )
    try:
        message: ClientMessage = model.model_validate(data)  # type: ignore[assignment]
    except ValidationError as error:
        raise _translate(kind, error, req) from error
    return message


def validate_server_message(msg: ServerMessage | Mapping[str, Any]) -> ServerMessage:
    """A typed server message; a dict (e.g. a queue or timing event) is checked against the schema."""
    if isinstance(msg, _ServerMessage):
        return msg
    data = dict(msg)
    data.setdefault("v", PROTOCOL_VERSION)
    kind = data.get("type")
    if kind not in SERVER_TYPES:
        raise ProtocolError("unknown_type", f"unknown server message type {kind!r}")
    try:
        return _SERVER_ADAPTER.validate_python(data)
    except ValidationError as error:
        raise _translate(str(kind), error, None) from error


@overload
def encode_server_message(msg: ServerMessage | Mapping[str, Any], fmt: Literal["json"] = ...) -> str: ...
@overload
def encode_server_message(msg: ServerMessage | Mapping[str, Any], fmt: Literal["msgpack"]) -> bytes: ...
def encode_server_message(msg: ServerMessage | Mapping[str, Any], fmt: Format = "json") -> str | bytes:
    """Encode once per event and fan the result out: JSON text for browsers, msgpack bytes."""
    payload = validate_server_message(msg).model_dump(mode="json")
    if fmt == "json":
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if fmt == "msgpack":
        packed: bytes = msgpack.packb(payload, use_bin_type=True)
        return packed
    raise ValueError(f"fmt: {fmt!r}; allowed values: json, msgpack")


def decode_server_message(raw: bytes | str) -> ServerMessage:
    """For clients (car_client, tests): decode and validate one server frame."""
    data = _decode(raw)
    if not isinstance(data, dict):
        raise ProtocolError("not_an_object", f"a message must be an object, not {type(data).__name__}")
    if data.get("v") != PROTOCOL_VERSION:
        raise ProtocolError("version_mismatch", f"unsupported protocol version {data.get('v')!r}")
    return validate_server_message(data)


# --- the car link (/ws/car): car_client ↔ server ---------------------------------------------------
# Same framing, version, size limit and error codes as the race websocket. Commands go server → car
# with a server-chosen ``req`` and are answered by the car with ``ok {req, data?}`` or
# ``error {req, code, message}``; the car's hello is answered with ``welcome``. Heartbeats flow both
# ways at HEARTBEAT_HZ; a side that hears none for DEAD_MAN_MS treats the link as gone (the car
# goes to neutral throttle and disarms). ``echo_t`` returns the peer's last ``t`` and ``held_ms``
# how long it was held, so each side measures the round trip on its own clock.
HEARTBEAT_HZ = 10
DEAD_MAN_MS = 300
PWM_PERIOD_NS = 20_000_000
CarMode = Literal["manual", "autonomous", "calibration"]
Unit = Annotated[float, Field(ge=-1.0, le=1.0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, max_length=64)]


class ServoCalibrationInfo(BaseModel):
    """One servo's PWM pulse widths (ns) and polarity, as the stock car stores them."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    min: Annotated[int, Field(ge=0, le=PWM_PERIOD_NS)]
    mid: Annotated[int, Field(ge=0, le=PWM_PERIOD_NS)]
    max: Annotated[int, Field(ge=0, le=PWM_PERIOD_NS)]
    polarity: Literal[-1, 1]


class CalibrationInfo(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    steering: ServoCalibrationInfo
    throttle: ServoCalibrationInfo


class _CarCommand(_Message):
    req: Req


class CarHeartbeat(_Message):
    type: Literal["heartbeat"] = "heartbeat"
    seq: Count
    t: Annotated[float, Field(allow_inf_nan=False)]  # sender's monotonic clock, seconds
    echo_t: Annotated[float, Field(allow_inf_nan=False)] | None = None
    held_ms: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None


class CarHello(_Message):
    """The car's registration after each connect: what it is and what it can do."""

    type: Literal["car_hello"] = "car_hello"
    req: Req
    hardware: Name
    software: Name
    capabilities: Annotated[list[Name], Field(max_length=32)] = []
    calibration: CalibrationInfo
    models: Annotated[list[Name], Field(max_length=100)] = []
    mode: CarMode
    armed: bool
    estop: bool


class CarTelemetry(_Message):
    """The car, 10 Hz: state, the chosen action, its outputs, inference speed, battery, link RTT."""

    type: Literal["car_telemetry"] = "car_telemetry"
    mode: CarMode
    armed: bool
    estop: bool
    model: Name | None = None
    action: Annotated[int, Field(ge=0)] | None = None
    steering: Unit  # what the servo is given, -1 (right) .. 1 (left)
    throttle: Unit
    max_speed: Fraction
    multiplier: Annotated[float, Field(ge=SPEED_MIN, le=SPEED_MAX)] = 1.0
    inference_fps: Annotated[float, Field(ge=0)] | None = None
    inference_ms: Annotated[float, Field(ge=0)] | None = None
    battery_pct: Annotated[float, Field(ge=0, le=100)] | None = None
    rtt_ms: Annotated[float, Field(ge=0)] | None = None
    speed_mps: Annotated[float, Field(allow_inf_nan=False)] | None = None  # where the car can measure it


class CarOk(_Message):
    type: Literal["ok"] = "ok"
    req: Req
    data: dict[str, Any] | None = None


class CarError(_Message):
    type: Literal["error"] = "error"
    req: Req | None = None
    code: str
    message: str


class Welcome(_Message):
    """The server's answer to car_hello: who the car is and the link's timing contract."""

    type: Literal["welcome"] = "welcome"
    req: Req
    car_id: Id
    name: str
    heartbeat_hz: Annotated[int, Field(ge=1)] = HEARTBEAT_HZ
    dead_man_ms: Annotated[int, Field(ge=50)] = DEAD_MAN_MS


class SetMode(_CarCommand):
    type: Literal["set_mode"] = "set_mode"
    mode: CarMode


class Arm(_CarCommand):
    """Start the vehicle: autonomous needs a loaded model; manual accepts drive commands."""

    type: Literal["arm"] = "arm"


class Stop(_CarCommand):
    type: Literal["stop"] = "stop"


class EmergencyStop(_CarCommand):
    """Latched: neutral and disarmed until ``clear_estop``, across reconnects and restarts of the link."""

    type: Literal["estop"] = "estop"


class ClearEmergencyStop(_CarCommand):
    type: Literal["clear_estop"] = "clear_estop"


class SetMaxSpeed(_CarCommand):
    type: Literal["set_max_speed"] = "set_max_speed"
    value: Fraction


class SetSpeedMultiplier(_CarCommand):
    type: Literal["set_speed_multiplier"] = "set_speed_multiplier"
    multiplier: Annotated[float, Field(ge=SPEED_MIN, le=SPEED_MAX, allow_inf_nan=False)]


class LoadModel(_CarCommand):
    """Download the car bundle (tar.gz: model_metadata.json + model.onnx) from ``url`` (a path on
    the server, fetched with the car's token) and check it against ``sha256`` before using it."""

    type: Literal["load_model"] = "load_model"
    model_id: Id
    name: Name
    url: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^/")]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class GetCalibration(_CarCommand):
    type: Literal["get_calibration"] = "get_calibration"


class SetCalibration(_CarCommand):
    type: Literal["set_calibration"] = "set_calibration"
    calibration: CalibrationInfo


class TailLight(_CarCommand):
    type: Literal["tail_light"] = "tail_light"
    colour: Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]


class Drive(_CarCommand):
    """Manual driving: steering and throttle, -1..1 each (manual mode, armed)."""

    type: Literal["drive"] = "drive"
    angle: Unit
    throttle: Unit


CarMessage: TypeAlias = CarHello | CarHeartbeat | CarTelemetry | CarOk | CarError
CarCommand: TypeAlias = (
    Welcome
    | CarHeartbeat
    | SetMode
    | Arm
    | Stop
    | EmergencyStop
    | ClearEmergencyStop
    | SetMaxSpeed
    | SetSpeedMultiplier
    | LoadModel
    | GetCalibration
    | SetCalibration
    | TailLight
    | Drive
)
CAR_MESSAGE_TYPES: dict[str, type[_Message]] = {
    cls.model_fields["type"].default: cls for cls in (CarHello, CarHeartbeat, CarTelemetry, CarOk, CarError)
}
CAR_COMMAND_TYPES: dict[str, type[_Message]] = {
    cls.model_fields["type"].default: cls
    for cls in (
        Welcome, CarHeartbeat, SetMode, Arm, Stop, EmergencyStop, ClearEmergencyStop, SetMaxSpeed,
        SetSpeedMultiplier, LoadModel, GetCalibration, SetCalibration, TailLight, Drive,
    )
}  # fmt: skip


def _parse_typed(raw: bytes | str, types: Mapping[str, type[_Message]]) -> _Message:
    data = _decode(raw)
    if not isinstance(data, dict):
        raise ProtocolError("not_an_object", f"a message must be an object, not {type(data).__name__}")
    req = data.get("req")
    if isinstance(req, bool) or not isinstance(req, str | int):
        req = None
    version = data.get("v")
    if isinstance(version, bool) or version != PROTOCOL_VERSION:
        raise ProtocolError(
            "version_mismatch", f"unsupported protocol version {version!r}; this side speaks {PROTOCOL_VERSION}", req
        )
    kind = data.get("type")
    if kind is None:
        raise ProtocolError("missing_field", "type: required field is missing", req)
    model = types.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ProtocolError(
            "unknown_type", f"unknown message type {kind!r}; allowed types: {', '.join(sorted(types))}", req
        )
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise _translate(str(kind), error, req) from error


def parse_car_message(raw: bytes | str) -> CarMessage:
    """Server side: one frame from a car (see the car-link section above)."""
    message: CarMessage = _parse_typed(raw, CAR_MESSAGE_TYPES)  # type: ignore[assignment]
    return message


def parse_car_command(raw: bytes | str) -> CarCommand:
    """Car side: one frame from the server."""
    message: CarCommand = _parse_typed(raw, CAR_COMMAND_TYPES)  # type: ignore[assignment]
    return message


def encode_car_frame(msg: CarMessage | CarCommand) -> str:
    """JSON text for either direction of the car link (validated on construction)."""
    return json.dumps(msg.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
