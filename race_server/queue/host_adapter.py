"""What a LIVE race's queue does when its RaceHost reports something.

Host events arrive in order from one pump task per race. Each becomes a queue-machine transition
(countdown, Go, checkered flag, a failed run or simulator), a stored event (laps, sectors,
penalties) or a live-only publication (telemetry). A database outage does not lose any of them:
the pump holds the event and retries until it is stored (``until_stored``), and events behind it
wait in the host's queue, in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from race_server.db import races
from race_server.live.events import (
    Countdown,
    HostEvent,
    HostFailed,
    LapCompleted,
    RunEnded,
    RunStarted,
    SpeedApplied,
    Telemetry,
    TimingNote,
)
from race_server.queue.event_store import Event, EventStore, leaderboard, leaderboard_event, shape, until_stored
from race_server.queue.live_race import LiveRace
from race_server.queue.machine import Run
from race_server.queue.recorder import RunRecorder

log = logging.getLogger("trackside.queue")
Spawn = Callable[[LiveRace, Awaitable[None], str], None]


class HostAdapter:
    def __init__(
        self,
        events: EventStore,
        recorder: RunRecorder,
        spawn: Spawn,
        on_replay_ended: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self.events = events
        self.recorder = recorder
        self.spawn = spawn
        self.on_replay_ended = on_replay_ended

    async def on_event(self, lr: LiveRace, event: HostEvent) -> None:
        if isinstance(event, Telemetry):
            await self._telemetry(lr, event)
            return
        if isinstance(event, SpeedApplied):
            return  # the service publishes the confirmed multiplier when it sets it
        async with lr.lock:
            if isinstance(event, TimingNote):
                # Held back: the sector that ends a lap arrives in the same host batch as the lap, and
                # goes into the lap's transaction so the lap does not wait behind one of its own.
                # Otherwise stored before the next host event, or by this task, which cannot run
                # before the pump has drained the host's batch (nothing in between suspends).
                shaped = shape({**event.wire, "race_id": lr.race_id})
                if shaped is not None:
                    lr.timing.append(shaped)
                    self.spawn(lr, until_stored(lr, lambda: self._store_timing(lr)), "timing")
                return
            if not isinstance(event, LapCompleted):
                await self._flush_timing(lr)
            run = lr.machine.run
            same_run = run is not None and event_run(event) in (None, run.run_id)
            match event:
                case Countdown(value=value) if run is not None and same_run and run.phase == "countdown":
                    await self.events.transition(lr, lambda m: m.tick(lr.at(run.go_at - value)))
                case RunStarted() if run is not None and same_run and run.phase == "countdown":

                    async def running(conn: asyncpg.Connection) -> list[Event]:
                        await races.set_run_status(conn, run.run_id, "running")
                        return []

                    await self.events.transition(lr, lambda m: m.tick(lr.at(run.go_at)), running)
                case LapCompleted():
                    await self._lap(lr, event)
                case RunEnded(reason=reason) if run is not None and same_run:
                    if reason == "time_up":
                        await self._checkered(lr, run)
                    elif run.phase in ("countdown", "running"):
                        await self.run_failed_locked(lr, run.run_id, reason)
                case HostFailed(message=message) if lr.machine.simulator in ("launching", "running"):

                    async def failed(conn: asyncpg.Connection) -> list[Event]:
                        if run is not None:
                            await races.set_run_status(conn, run.run_id, "failed", message)
                        return []

                    await self.events.transition(lr, lambda m: m.simulator_failed(message, lr.now()), failed)

    async def _store_timing(self, lr: LiveRace) -> None:
        async with lr.lock:
            await self._flush_timing(lr)

    async def _flush_timing(self, lr: LiveRace) -> None:
        """Store held-back timing events (caller holds ``lr.lock``); kept if storing fails."""
        if lr.timing:
            held = list(lr.timing)
            await self.events.append(lr.race_id, held)
            del lr.timing[: len(held)]

    async def _telemetry(self, lr: LiveRace, event: Telemetry) -> None:
        shaped = shape({**event.wire, "race_id": lr.race_id})
        if shaped is None:
            return
        lr.last_telemetry = shaped
        self.recorder.record(lr.race_id, event.run_id, event.wire)
        lr.telemetry_seq += 1
        # Telemetry is not stored: a string id marks it as live-only (never replayed, never deduped).
        await self.events.publish(lr.race_id, [{**shaped, "id": f"t{lr.telemetry_seq}"}])

    async def _lap(self, lr: LiveRace, event: LapCompleted) -> None:
        shaped = shape({**event.wire, "race_id": lr.race_id})
        if shaped is None:
            return

        async def record(conn: asyncpg.Connection) -> list[Event]:
            await races.insert_lap(conn, lr.race_id, shaped)
            return []

        async def board(conn: asyncpg.Connection) -> list[Event]:
            return [leaderboard_event(await leaderboard(conn, lr.race_id, lr.config))]

        # Two steps so spectators get the lap without waiting for the leaderboard's round trips.
        # A crash between them loses nothing: the leaderboard is derived from the stored laps
        # (snapshots rebuild it, and a new owner publishes a fresh one for clients resuming from the
        # log). The lap goes out before the sector that ended it (held back, see on_event): every
        # connection gets one frame per round of the fan-out, so the lap reaches all of them a round earlier.
        held = list(lr.timing)
        await self.events.append(lr.race_id, [shaped, *held], record)
        del lr.timing[: len(held)]
        # The lap is stored: a retry of this whole event would store it twice, so only this step retries.
        await until_stored(lr, lambda: self._append(lr.race_id, board))

    async def _append(self, race_id: int, work: Callable[[asyncpg.Connection], Awaitable[list[Event]]]) -> None:
        await self.events.append(race_id, [], work)

    async def _checkered(self, lr: LiveRace, run: Run) -> None:
        async def completed(conn: asyncpg.Connection) -> list[Event]:
            await races.set_run_status(conn, run.run_id, "completed", "time_up")
            return []

        if run.phase in ("countdown", "running"):
            await self.events.transition(lr, lambda m: m.tick(lr.at(max(run.go_at, run.ends_at))), completed)
        self._write_logs(lr, run.run_id)
        self.spawn(lr, self._end_replay(lr, run), "replay")

    async def _end_replay(self, lr: LiveRace, run: Run) -> None:
        await asyncio.sleep(lr.machine.settings.replay_s)  # the replay's length, on the wall clock

        async def end() -> None:
            async with lr.lock:
                current = lr.machine.run
                if current is None or current.run_id != run.run_id or current.phase != "replay":
                    return
                await self.events.transition(lr, lambda m: m.tick(lr.at(run.replay_ends_at)))

        await until_stored(lr, end)
        if self.on_replay_ended is not None:
            await self.on_replay_ended(lr.race_id)

    async def run_failed(self, lr: LiveRace, run_id: int, reason: str) -> None:
        async with lr.lock:
            await self.run_failed_locked(lr, run_id, reason)

    async def run_failed_locked(self, lr: LiveRace, run_id: int, reason: str) -> None:
        run = lr.machine.run
        if run is None or run.run_id != run_id or not lr.machine.run_in_progress:
            return

        async def failed(conn: asyncpg.Connection) -> list[Event]:
            await races.set_run_status(conn, run_id, "failed", reason)
            return []

        await self.events.transition(lr, lambda m: m.run_failed(reason, lr.now()), failed)
        self._write_logs(lr, run_id)

    def _write_logs(self, lr: LiveRace, run_id: int) -> None:
        written = self.recorder.finish(lr.race_id, run_id)
        if written is not None:
            self.spawn(lr, written, "run-logs")


def event_run(event: HostEvent) -> int | None:
    run_id = getattr(event, "run_id", None)
    return run_id if run_id else None


def describe(event: HostEvent) -> str:
    wire: dict[str, Any] = event.wire
    return str(wire.get("type"))
