"""The persisting shell around the LIVE queue machine: one ``LiveRace`` per LIVE race this process owns.

Every transition goes the same way (``EventStore.transition``): the pure ``QueueMachine`` produces
events → one transaction stores them in the race's event log (ids assigned there), the machine's
state and whatever the events describe (runs, laps) → then they are published on the bus channel
``race:<id>``. The log is the truth: a client that missed something replays it from PostgreSQL.

Parts, each with one job: ``RaceLeases`` (which process owns a race), ``EventStore`` (the log and
the transition with its rollback), ``HostAdapter`` (what the RaceHost reports becomes transitions),
``RunRecorder`` (each run's telemetry, written as DeepRacer logs). This class ties them together:
taking a race over, organizer commands, launching a run, speed control.

When a process takes over a race whose stored state says a simulator was running, the previous
owner died: the run in progress is marked interrupted (the racer goes back to the top of the queue,
flagged for relaunch), completed laps stay, and the simulator is started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from race_server import protocol
from race_server.bus import EventBus
from race_server.db import races
from race_server.models.store import ModelStore
from race_server.queue.event_store import (
    Event,
    EventStore,
    channel,
    leaderboard,
    leaderboard_event,
    publish,
    shape,
    store,
    until_stored,
)
from race_server.queue.host_adapter import HostAdapter
from race_server.queue.hosting import (
    Host,
    HostFactory,
    default_host_factory,
    default_model_store,
    driver_spec,
    race_files,
)
from race_server.queue.lease import RaceLeases
from race_server.queue.live_race import LiveRace
from race_server.queue.machine import QueueError, QueueMachine, SimulatorStage, Submission
from race_server.queue.persistence import (
    COUNTDOWN_S,
    is_over,
    load_machine,
    needs_owner,
    objects_of,
    queue_settings,
)
from race_server.queue.recorder import RunRecorder
from race_server.races.config import RaceConfig

# The names callers import from here; each lives in the part that owns it.
__all__ = [
    "COUNTDOWN_S",
    "Host",
    "HostFactory",
    "LiveRace",
    "QueueService",
    "RaceOwnedElsewhere",
    "channel",
    "default_host_factory",
    "default_model_store",
    "driver_spec",
    "leaderboard",
    "leaderboard_event",
    "objects_of",
    "publish",
    "race_files",
    "shape",
    "store",
]

log = logging.getLogger("trackside.queue")
LEASE_CHECK_S = 2.0


class RaceOwnedElsewhere(QueueError):
    pass


class QueueService:
    """Owns this process's LIVE races (queue machine + RaceHost); see the module docstring."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        bus: EventBus,
        data_dir: Path,
        *,
        host_factory: HostFactory | None = None,
        countdown_s: int = COUNTDOWN_S,
        time_per_racer_s: float | None = None,
        on_replay_ended: Callable[[int], Awaitable[None]] | None = None,
        models: ModelStore | None = None,
    ) -> None:
        self.pool = pool
        self.bus = bus
        self.data_dir = data_dir
        self.models = models or default_model_store(pool, data_dir)
        self.host_factory = host_factory or default_host_factory()
        self.countdown_s = countdown_s
        self.time_per_racer_s = time_per_racer_s
        self.races: dict[int, LiveRace] = {}
        self.leases = RaceLeases(pool)
        self.events = EventStore(pool, bus)
        self.recorder = RunRecorder(data_dir)
        self.adapter = HostAdapter(self.events, self.recorder, self._spawn, on_replay_ended)
        self._loading = asyncio.Lock()
        self._closed = False
        self._keeper: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Take over the LIVE races still on that a process that is gone left with a simulator or a run."""
        now = datetime.now(UTC)
        for race in await races.list_live(self.pool):
            if not needs_owner(race.queue_state) or is_over(race.queue_state) or race.config.status(now) == "closed":
                continue
            with contextlib.suppress(RaceOwnedElsewhere):
                await self.live(race.id)
        self._keeper = asyncio.create_task(self._keep_leases(), name="race-leases")

    async def close(self) -> None:
        self._closed = True
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        for race_id in list(self.races):
            await self.release(race_id)
        await self.leases.close()

    async def release(self, race_id: int) -> None:
        """Stop owning a race (server stop, race deleted, lease lost): host closed, lease given back."""
        lr = self.races.pop(race_id, None)
        if lr is None:
            return
        for task in list(lr.tasks):
            task.cancel()
        for task in list(lr.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if lr.host is not None:
            with contextlib.suppress(Exception):
                await lr.host.close()
        self.recorder.forget(race_id)
        await self.leases.release(race_id)

    async def _keep_leases(self) -> None:
        """After a database outage the lease connection is gone: take the locks again, and let go of
        races another process took meanwhile (it runs them now)."""
        while True:
            await asyncio.sleep(LEASE_CHECK_S)
            await self.check_leases()

    async def check_leases(self) -> None:
        if not self.leases.held or self.leases.connected:
            return
        try:
            lost = await self.leases.renew()
        except Exception as error:  # still down: try again at the next check
            log.debug("race leases not renewed yet: %s", error)
            return
        for race_id in lost:
            log.warning("race %s: another server process took it over during the outage", race_id)
            await self.release(race_id)

    def degraded(self) -> dict[int, str]:
        """Races waiting for the database to store their events, with the reason."""
        return {race_id: lr.degraded for race_id, lr in self.races.items() if lr.degraded is not None}

    def config_changed(self, race_id: int, config: RaceConfig) -> None:
        """An organizer edited the race: the next run uses the new slot and replay times."""
        lr = self.races.get(race_id)
        if lr is None:
            return
        lr.config = config
        if lr.machine.run is None:
            lr.machine.settings = queue_settings(config, self.countdown_s, self.time_per_racer_s)

    def _spawn(self, lr: LiveRace, coro: Awaitable[None], name: str) -> None:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("race %s: %s failed", lr.race_id, name)

        task = asyncio.create_task(guarded(), name=f"race-{lr.race_id}-{name}")
        lr.tasks.add(task)
        task.add_done_callback(lr.tasks.discard)

    async def live(self, race_id: int) -> LiveRace:
        """The race, loaded and owned by this process (recovering it if its owner died)."""
        lr = self.races.get(race_id)
        if lr is not None:
            return lr
        async with self._loading:
            lr = self.races.get(race_id)
            if lr is not None:
                return lr
            race = await races.get(self.pool, race_id)
            if race is None or race.format != "live":
                raise QueueError("not_live", f"Race {race_id} is not a LIVE race.")
            if not await self.leases.acquire(race_id):
                raise RaceOwnedElsewhere(
                    "race_owned_elsewhere", f"Race {race_id} is run by another Trackside server process."
                )
            # Re-read under the lease: the previous owner may have written since.
            race = await races.get(self.pool, race_id)
            assert race is not None
            settings = queue_settings(race.config, self.countdown_s, self.time_per_racer_s)
            machine = load_machine(race.queue_state, settings)
            lr = LiveRace(race_id, race.config, machine)
            self.races[race_id] = lr
        async with lr.lock:
            if machine.simulator in ("launching", "running") or machine.run is not None:
                await self._recover(lr)
        return lr

    async def _recover(self, lr: LiveRace) -> None:
        log.warning("race %s: taking over after its previous server stopped", lr.race_id)
        reason = "server restarted"

        async def mark(conn: asyncpg.Connection) -> list[Event]:
            await races.interrupt_open_runs(conn, lr.race_id, "interrupted")
            # The owner may have died between storing a lap and its leaderboard (see HostAdapter._lap).
            return [leaderboard_event(await leaderboard(conn, lr.race_id, lr.config))]

        machine = lr.machine
        if machine.simulator in ("launching", "running"):
            await self._transition(lr, lambda m: m.simulator_failed(reason, lr.now()), mark)
        elif machine.run is not None:
            await self._transition(lr, lambda m: m.interrupt(reason, lr.now()), mark)
        if machine.simulator == "failed":
            await self._transition(lr, lambda m: m.reset_simulator(lr.now()))
            self._spawn(lr, self._start_host(lr), "start-host")

    async def _transition(
        self,
        lr: LiveRace,
        command: Callable[[QueueMachine], list[Event]],
        work: Callable[[asyncpg.Connection], Awaitable[list[Event]]] | None = None,
    ) -> list[Event]:
        return await self.events.transition(lr, command, work)

    # --- commands ------------------------------------------------------------------------------
    async def command(self, race_id: int, message: protocol.ClientMessage, editor: str) -> None:
        """An organizer command (already authorised). Raises QueueError with the organizer's message."""
        if self._closed:
            raise QueueError("shutting_down", "The server is shutting down.")
        lr = await self.live(race_id)
        async with lr.lock:
            await self._command(lr, message, editor)

    async def _command(self, lr: LiveRace, message: protocol.ClientMessage, editor: str) -> None:
        now = lr.now()
        match message:
            case protocol.LaunchSimulator():
                await self._transition(lr, lambda m: m.launch_simulator())
                self._spawn(lr, self._start_host(lr), "start-host")
            case protocol.ResetSimulator():
                run = lr.machine.run

                async def mark(conn: asyncpg.Connection) -> list[Event]:
                    if run is not None and lr.machine.run is None:
                        await races.set_run_status(conn, run.run_id, "interrupted", "simulator reset")
                    return []

                await self._transition(lr, lambda m: m.reset_simulator(now), mark)
                self._spawn(lr, self._start_host(lr), "start-host")
            case protocol.SetEntriesOpen(open=open_):
                subs = [] if open_ else await self._entries(lr.race_id)
                await self._transition(lr, lambda m: m.set_entries_open(open_, subs))
            case protocol.BeginQueueEdit():
                await self._transition(lr, lambda m: m.begin_queue_edit(editor))
            case protocol.CancelQueueEdit():
                await self._transition(lr, lambda m: m.cancel_queue_edit(editor))
            case protocol.SaveQueue(order=order, version=version):
                await self._transition(lr, lambda m: m.save_queue(editor, order, version))
            case protocol.LaunchRacer(racer_id=racer_id):
                await self._launch(lr, racer_id, relaunch=False)
            case protocol.RelaunchRacer(racer_id=racer_id):
                await self._launch(lr, racer_id, relaunch=True)
            case protocol.ClearLeaderboard():

                async def clear(conn: asyncpg.Connection) -> list[Event]:
                    await races.clear_laps(conn, lr.race_id)
                    return [leaderboard_event([])]

                await self._transition(lr, lambda m: m.clear_leaderboard(), clear)
                if lr.host is not None:
                    await lr.host.clear_timing()
            case protocol.DeclareWinner():
                rows = await leaderboard(self.pool, lr.race_id, lr.config)
                winner = rows[0].racer_id if rows else None
                await self._transition(lr, lambda m: m.declare_winner(winner, now))
            case _:
                raise QueueError("unknown_command", f"{message.type} is not an organizer command.")

    async def _entries(self, race_id: int) -> list[Submission]:
        async with self.pool.acquire() as conn:
            subs = await races.submissions(conn, race_id)
            members = {row["user_id"] for row in await races.members(conn, race_id) if row["removed_at"] is None}
        return [Submission(s.racer_id, s.id, float(s.id), s.loadable, s.error) for s in subs if s.racer_id in members]

    async def _launch(self, lr: LiveRace, racer_id: int, *, relaunch: bool) -> None:
        entry = next((e for e in lr.machine.queue if e.racer_id == racer_id), None)
        now = lr.now()
        async with self.pool.acquire() as conn:
            run_id = await races.reserve_run_id(conn)
            sub = await races.submission(conn, entry.model_id) if entry is not None else None
        model = await race_files(self.models, sub)
        lr.machine.next_run_id = run_id

        async def insert(conn: asyncpg.Connection) -> list[Event]:
            await races.insert_run(
                conn,
                run_id=run_id,
                race_id=lr.race_id,
                racer_id=racer_id,
                submission_id=sub.id if sub is not None else None,
                kind="live",
                status="countdown",
            )
            return []

        if relaunch:
            await self._transition(lr, lambda m: m.relaunch_racer(racer_id, now), insert)
        else:
            await self._transition(lr, lambda m: m.launch_racer(racer_id, now), insert)
        assert sub is not None and lr.host is not None
        try:
            from race_server.live.host import RunSpec

            spec = RunSpec(
                race_id=lr.race_id,
                run_id=run_id,
                racer_id=racer_id,
                route_id=lr.config.route_id,
                reverse=lr.config.reverse,
                objects=objects_of(lr.config),
                driver=driver_spec(sub, model),
                slot_s=lr.machine.settings.time_per_racer_s,
                countdown_s=float(lr.machine.settings.countdown_s),
                off_track_penalty_s=lr.config.off_track_penalty_s,
                collision_penalty_s=lr.config.collision_penalty_s,
                resets=lr.config.resets,
                seed=run_id,
            )
            self.recorder.begin(lr.race_id, run_id, (lr.config.route_id, lr.config.reverse), spec.driver)
            await lr.host.launch(spec)
        except Exception as error:
            log.exception("race %s: launching run %s failed", lr.race_id, run_id)
            await self.adapter.run_failed_locked(lr, run_id, f"launch failed: {error}")

    async def set_speed(self, race_id: int, racer_id: int, multiplier: float) -> float:
        """Speed control: only the racer on track, only during their run."""
        lr = self.races.get(race_id)
        if lr is None or not lr.machine.can_control_speed(racer_id) or lr.host is None:
            raise QueueError("not_on_track", "Speed control is only for the racer on track, during their run.")
        applied = await lr.host.set_speed_multiplier(multiplier)
        lr.telemetry_seq += 1
        event: dict[str, Any] = {"type": "speed", "racer_id": racer_id, "multiplier": applied, "race_id": race_id,
                                 "id": f"speed-{lr.telemetry_seq}"}  # fmt: skip
        applied_at = getattr(lr.host, "last_speed_ack", {}).get("applied_at")  # test hosts may lack it
        if isinstance(applied_at, float):
            event["applied_at"] = applied_at
        await publish(self.bus, race_id, [event])
        return applied

    def run_dir(self, race_id: int, run_id: int) -> Path:
        return self.recorder.run_dir(race_id, run_id)

    # --- the simulator ---------------------------------------------------------------------------
    async def _start_host(self, lr: LiveRace) -> None:
        old, lr.host = lr.host, None
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()
        host = self.host_factory(lr.race_id)
        try:
            async with lr.lock:
                await self._stage(lr, "ready")
            async with self.pool.acquire() as conn:
                laps = await races.laps(conn, lr.race_id)
            await host.start(lr.config.route_id, lr.config.reverse, laps)
            async with lr.lock:
                lr.host = host
                await self._stage(lr, "set")
                await self._stage(lr, "go")
        except Exception as error:
            log.exception("race %s: simulator failed to start", lr.race_id)
            message = str(error) or "start failed"
            with contextlib.suppress(Exception):
                await host.close()
            async with lr.lock:
                if lr.machine.simulator in ("launching", "running"):
                    await self._transition(lr, lambda m: m.simulator_failed(message, lr.now()))
            return
        self._spawn(lr, self._pump(lr, host), "host-events")

    async def _stage(self, lr: LiveRace, stage: SimulatorStage) -> None:
        if lr.machine.simulator == "launching":
            await self._transition(lr, lambda m: m.simulator_stage(stage))

    async def _pump(self, lr: LiveRace, host: Host) -> None:
        async for event in host.events():
            if lr.host is not host:
                return
            try:
                await until_stored(lr, functools.partial(self.adapter.on_event, lr, event))
            except QueueError as error:
                log.info("race %s: host event %s ignored: %s", lr.race_id, event.wire.get("type"), error.message)
