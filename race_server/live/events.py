"""What a RaceHost reports, as one typed union shared by the simulator session and the queue service.

On the pipe from the simulator process an event is a plain dict (cheap to pickle): ``type``,
``race_id``, ``run_id``, ``t`` (sim seconds since Go) and the fields of its ``race_server.protocol``
message. ``from_wire`` turns it into one of the classes below; each keeps the dict as ``wire``
(the service shapes it into the protocol message it publishes) and names the fields the service
acts on. ``run_end`` and ``host_error`` exist only between the host and the service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Wire = dict[str, Any]
HOST_ONLY_TYPES = frozenset({"run_end", "host_error"})
TIMING_TYPES = frozenset({"sector", "penalty", "attempt_ended"})
# telemetry fields for the host's own listeners (policy command; objects for the broadcast camera)
HOST_ONLY_FIELDS = frozenset({"host", "objects"})
RunEndReason = Literal["time_up", "run_failed", "aborted", "interrupted"]


@dataclass(frozen=True, slots=True)
class Countdown:
    """A countdown number (10 … 1) was shown; Go follows ``value`` seconds later."""

    run_id: int
    value: int
    wire: Wire


@dataclass(frozen=True, slots=True)
class RunStarted:
    """Go: the car drives and the slot's clock runs."""

    run_id: int
    wire: Wire


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One 15 Hz sim step of the run on track (live only: never stored in the event log)."""

    run_id: int
    wire: Wire


@dataclass(frozen=True, slots=True)
class SpeedApplied:
    run_id: int
    multiplier: float
    wire: Wire


@dataclass(frozen=True, slots=True)
class TimingNote:
    """A sector crossing, a penalty or an ended attempt: stored as it is, no queue state change."""

    run_id: int
    wire: Wire


@dataclass(frozen=True, slots=True)
class LapCompleted:
    run_id: int
    wire: Wire


@dataclass(frozen=True, slots=True)
class RunEnded:
    run_id: int
    reason: str
    laps: int
    message: str
    wire: Wire


@dataclass(frozen=True, slots=True)
class HostFailed:
    """The simulator process failed or died; a run on track, if any, also gets ``RunEnded``."""

    message: str
    wire: Wire


HostEvent = Countdown | RunStarted | Telemetry | SpeedApplied | TimingNote | LapCompleted | RunEnded | HostFailed


class UnknownHostEvent(ValueError):
    pass


def from_wire(event: Mapping[str, Any]) -> HostEvent:
    wire = dict(event)
    kind = wire.get("type")
    run_id = int(wire.get("run_id") or 0)
    match kind:
        case "countdown":
            return Countdown(run_id, int(wire["value"]), wire)
        case "run_started":
            return RunStarted(run_id, wire)
        case "telemetry":
            return Telemetry(run_id, wire)
        case "speed":
            return SpeedApplied(run_id, float(wire["multiplier"]), wire)
        case "lap":
            return LapCompleted(run_id, wire)
        case "run_end":
            reason = str(wire.get("reason", "time_up"))
            return RunEnded(run_id, reason, int(wire.get("laps", 0)), str(wire.get("message", reason)), wire)
        case "host_error":
            return HostFailed(str(wire.get("message", "simulator error")), wire)
        case _ if kind in TIMING_TYPES:
            return TimingNote(run_id, wire)
    raise UnknownHostEvent(f"unknown host event type {kind!r}")


def to_protocol(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``race_server.protocol`` server message for a wire event (None for host-only types)."""
    kind = event["type"]
    if kind in HOST_ONLY_TYPES:
        return None
    out = {key: value for key, value in event.items() if key not in HOST_ONLY_FIELDS}
    if kind != "telemetry":
        out.pop("t", None)
    if kind == "speed":
        out.pop("run_id", None)
    return out
