"""The persisting shell around the LIVE queue machine: one ``LiveRace`` per LIVE race this process owns.

Every transition goes the same way: the pure ``QueueMachine`` produces events → one transaction
stores them in the race's event log (ids assigned there), the machine's state and whatever the
events describe (runs, laps) → then they are published on the bus channel ``race:<id>``. The log
is the truth: a client that missed something replays it from PostgreSQL.

Ownership: a process owns a LIVE race while it holds a PostgreSQL session advisory lock on it (on
a pooled connection kept for that purpose); a killed process loses the lock with its connection.
When a process loads a race whose stored state says a simulator was running, the previous owner
died: the run in progress is marked interrupted (the racer goes back to the top of the queue,
flagged for relaunch), completed laps stay, and the simulator is started again.

The RaceHost (``race_server.live.host``) owns the simulator and the timing clock; this service
feeds it runs and reacts to what it emits (countdown, go, laps, run end).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from race_server import protocol
from race_server.bus import BusError, EventBus
from race_server.db import race_events, races
from race_server.models.store import ModelStore, RaceFiles
from race_server.queue.machine import (
    QueueEntry,
    QueueError,
    QueueMachine,
    QueueSettings,
    Run,
    SimulatorStage,
    Submission,
)
from race_server.races.config import RaceConfig
from race_server.races.leaderboard import LeaderboardRow, build_leaderboard
from race_server.races.ranking import Lap

log = logging.getLogger("trackside.queue")

Event = dict[str, Any]
_LEASE_CLASS = 0x7472_6163  # "trac": advisory-lock namespace for race ownership
COUNTDOWN_S = 10
TIMING_KINDS = ("sector", "penalty", "attempt_ended")  # host events stored as they are (no state change)


def channel(race_id: int) -> str:
    return f"race:{race_id}"


class Host(Protocol):
    """What this service needs from a RaceHost (race_server.live.host.RaceHost)."""

    async def start(self, route_id: str, reverse: bool, laps: Sequence[Lap] = ()) -> None: ...
    async def launch(self, spec: Any) -> None: ...
    async def set_speed_multiplier(self, multiplier: float) -> float: ...
    async def abort(self, reason: str) -> None: ...
    async def clear_timing(self) -> None: ...
    def events(self) -> AsyncIterator[dict[str, Any]]: ...
    async def close(self) -> None: ...


HostFactory = Callable[[int], Host]


def default_host_factory(realtime: bool = True) -> HostFactory:
    def make(race_id: int) -> Host:
        from race_server.live.host import RaceHost

        host: Host = RaceHost(race_id, realtime=realtime)
        return host

    return make


# --- protocol shaping --------------------------------------------------------------------------
def _server_fields() -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for cls in typing.get_args(protocol.ServerMessage):
        out[cls.model_fields["type"].default] = frozenset(cls.model_fields)
    return out


SERVER_FIELDS = _server_fields()


def shape(event: dict[str, Any]) -> Event | None:
    """Keep only what the protocol message of that type carries; None if it has no such type."""
    fields = SERVER_FIELDS.get(str(event.get("type")))
    if fields is None:
        return None
    return {k: v for k, v in event.items() if k in fields}


# --- machine persistence -----------------------------------------------------------------------
def dump_machine(machine: QueueMachine, now: float) -> dict[str, Any]:
    return {
        "machine": {
            "settings": asdict(machine.settings),
            "simulator": machine.simulator,
            "stage": machine.stage,
            "entries_open": machine.entries_open,
            "queue": [asdict(e) for e in machine.queue],
            "version": machine.version,
            "drafts": dict(machine.drafts),
            "run": None if machine.run is None else asdict(machine.run),
            "winner": machine.winner,
            "finished": list(machine.finished),
            "next_run_id": machine.next_run_id,
        },
        "snapshot": machine.snapshot(now),
    }


def load_machine(state: dict[str, Any] | None, settings: QueueSettings) -> QueueMachine:
    machine = QueueMachine(settings)
    if state is None:
        return machine
    m = state["machine"]
    machine.simulator = m["simulator"]
    machine.stage = m["stage"]
    machine.entries_open = m["entries_open"]
    machine.queue = tuple(QueueEntry(**e) for e in m["queue"])
    machine.version = m["version"]
    machine.drafts = dict(m["drafts"])
    machine.run = None if m["run"] is None else Run(**m["run"])
    machine.winner = m["winner"]
    machine.finished = tuple(m["finished"])
    machine.next_run_id = m["next_run_id"]
    return machine


def queue_settings(
    config: RaceConfig, countdown_s: int = COUNTDOWN_S, time_per_racer_s: float | None = None
) -> QueueSettings:
    slot = time_per_racer_s if time_per_racer_s is not None else config.time_per_racer_s
    return QueueSettings(time_per_racer_s=slot, countdown_s=countdown_s, replay_s=config.replay_s)


def objects_of(config: RaceConfig) -> dict[str, Any]:
    """The race's objects as ``race_server.sim.objects.ObjectsConfig`` fields."""
    if config.object_avoidance is not None:
        oa = config.object_avoidance
        return {
            "race_type": "OBJECT_AVOIDANCE",
            "number_of_obstacles": oa.count,
            "randomize_obstacle_locations": oa.randomize,
            "object_positions": tuple((o.location_pct, o.lane) for o in oa.obstacles),
        }
    if config.head_to_bot is not None:
        hb = config.head_to_bot
        return {
            "race_type": "HEAD_TO_BOT",
            "number_of_bots": hb.bots,
            "bot_speed": hb.speed_mps,
            "is_lane_change": hb.lane_change,
            "lower_lane_change_time": hb.min_lane_change_s,
            "upper_lane_change_time": hb.max_lane_change_s,
        }
    return {"race_type": "TIME_TRIAL"}


async def leaderboard(
    conn: asyncpg.Connection | asyncpg.Pool, race_id: int, config: RaceConfig
) -> list[LeaderboardRow]:
    laps = await races.laps(conn, race_id)
    names = await races.names(conn, race_id)
    return build_leaderboard(laps, config.ranking, config.min_consecutive_laps, names)


def leaderboard_event(rows: Sequence[LeaderboardRow]) -> Event:
    return {"type": "leaderboard", "rows": [row.to_dict() for row in rows]}


async def publish(bus: EventBus, race_id: int, events: Sequence[Event]) -> None:
    for event in events:
        try:
            await bus.publish(channel(race_id), event)
        except BusError as error:
            # Stored already: subscribers resync from the log when the bus is back.
            log.warning("race %s: event %s not published: %s", race_id, event.get("id"), error)


async def store(
    pool: asyncpg.Pool,
    bus: EventBus,
    race_id: int,
    events: Sequence[Event],
    work: Callable[[asyncpg.Connection], Awaitable[Sequence[Event]]] | None = None,
) -> list[Event]:
    """Store events (plus those ``work`` returns, run in the same transaction), then publish them."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            more = list(await work(conn)) if work is not None else []
            stored = await race_events.append(conn, race_id, [*events, *more])
        # Published before the connection goes back to the pool: its reset is one more round trip.
        await publish(bus, race_id, stored)
    return stored


def driver_spec(submission: races.SubmissionRow, model: RaceFiles | None) -> Any:
    """The RaceHost's DriverSpec for a submission (``model``: its files, from the model store)."""
    from race_server.live.host import DriverSpec

    driver = submission.driver
    if driver.get("kind") == "reference":
        return DriverSpec(kind="reference", reference_speed=float(driver.get("reference_speed", 1.5)))
    if model is None or model.onnx_path is None:
        raise LookupError(f"model {submission.model_id} is gone or has no model.onnx")
    return DriverSpec(kind="onnx", onnx_path=model.onnx_path, model_metadata=model.metadata)


async def race_files(models: ModelStore, submission: races.SubmissionRow | None) -> RaceFiles | None:
    if submission is None or submission.model_id is None:
        return None
    return await models.race_files(submission.model_id)


def default_model_store(pool: asyncpg.Pool, data_dir: Path) -> ModelStore:
    # races only read from the store: no weight checks or TensorFlow conversion needed
    return ModelStore(pool, data_dir, weights_check=False, tf_converter=False)


# --- one LIVE race -------------------------------------------------------------------------------
@dataclass
class LiveRace:
    race_id: int
    config: RaceConfig
    machine: QueueMachine
    lease: asyncpg.Connection | Any
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    host: Host | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    clock: float = 0.0
    telemetry_seq: int = 0
    traces: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    last_telemetry: dict[str, Any] | None = None
    timing: list[Event] = field(default_factory=list)  # sector/penalty events not stored yet (see _on_host_event)

    def now(self) -> float:
        self.clock = max(self.clock, time.time())
        return self.clock

    def at(self, instant: float) -> float:
        """A scheduled instant reached (the host's clock said so): time never runs backwards."""
        self.clock = max(self.clock, instant)
        return self.clock


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
        self.on_replay_ended = on_replay_ended
        self.races: dict[int, LiveRace] = {}
        self._loading = asyncio.Lock()
        self._closed = False

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Take over LIVE races left with a simulator or a run by a process that is gone."""
        for race in await races.list_live(self.pool):
            state = (race.queue_state or {}).get("machine")
            if state and (state["simulator"] in ("launching", "running") or state["run"] is not None):
                try:
                    await self.live(race.id)
                except RaceOwnedElsewhere:
                    continue

    async def close(self) -> None:
        self._closed = True
        for race_id in list(self.races):
            await self.release(race_id)

    async def release(self, race_id: int) -> None:
        """Stop owning a race (server stop, race deleted): host closed, lease given back."""
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
        with contextlib.suppress(Exception):
            await lr.lease.execute("SELECT pg_advisory_unlock($1, $2)", _LEASE_CLASS, race_id)
        with contextlib.suppress(Exception):
            await self.pool.release(lr.lease)

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
            lease = await self.pool.acquire()
            got = await lease.fetchval("SELECT pg_try_advisory_lock($1, $2)", _LEASE_CLASS, race_id)
            if not got:
                await self.pool.release(lease)
                raise RaceOwnedElsewhere(
                    "race_owned_elsewhere", f"Race {race_id} is run by another Trackside server process."
                )
            # Re-read under the lease: the previous owner may have written since.
            race = await races.get(self.pool, race_id)
            assert race is not None
            settings = queue_settings(race.config, self.countdown_s, self.time_per_racer_s)
            machine = load_machine(race.queue_state, settings)
            lr = LiveRace(race_id, race.config, machine, lease)
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
            # The owner may have died between storing a lap and its leaderboard (see _lap).
            return [leaderboard_event(await leaderboard(conn, lr.race_id, lr.config))]

        machine = lr.machine
        if machine.simulator in ("launching", "running"):
            await self._transition(lr, lambda m: m.simulator_failed(reason, lr.now()), mark)
        elif machine.run is not None:
            await self._transition(lr, lambda m: m._interrupt(reason, lr.now()), mark)
        if machine.simulator == "failed":
            await self._transition(lr, lambda m: m.reset_simulator(lr.now()))
            self._spawn(lr, self._start_host(lr), "start-host")

    # --- the one way state changes -----------------------------------------------------------
    async def _transition(
        self,
        lr: LiveRace,
        command: Callable[[QueueMachine], list[Event]],
        work: Callable[[asyncpg.Connection], Awaitable[Sequence[Event]]] | None = None,
    ) -> list[Event]:
        """Run a machine command and persist + publish its events (caller holds ``lr.lock``).
        If storing fails the machine is put back as it was, so memory never runs ahead of the log."""
        backup = copy.deepcopy(lr.machine)
        try:
            events = command(lr.machine)

            async def persist(conn: asyncpg.Connection) -> Sequence[Event]:
                more = list(await work(conn)) if work is not None else []
                await races.save_queue_state(conn, lr.race_id, dump_machine(lr.machine, lr.now()))
                return more

            async with self.pool.acquire() as conn, conn.transaction():
                more = await persist(conn)
                stored = await race_events.append(conn, lr.race_id, [*events, *more])
        except BaseException:
            lr.machine = backup
            raise
        await publish(self.bus, lr.race_id, stored)
        return stored

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
            lr.traces[run_id] = []
            await lr.host.launch(spec)
        except Exception as error:
            log.exception("race %s: launching run %s failed", lr.race_id, run_id)
            await self._run_failed(lr, run_id, f"launch failed: {error}")

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
                await self._on_host_event(lr, event)
            except QueueError as error:
                log.info("race %s: host event %s ignored: %s", lr.race_id, event.get("type"), error.message)

    async def _on_host_event(self, lr: LiveRace, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "telemetry":
            await self._telemetry(lr, event)
            return
        async with lr.lock:
            if kind in TIMING_KINDS:
                # Held back: the sector that ends a lap arrives in the same host batch as the lap, and
                # goes into the lap's transaction so the lap does not wait behind one of its own.
                # Otherwise stored before the next host event, or by this task, which cannot run
                # before the pump has drained the host's batch (nothing in between suspends).
                shaped = shape({**event, "race_id": lr.race_id})
                if shaped is not None:
                    lr.timing.append(shaped)
                    self._spawn(lr, self._store_timing(lr), "timing")
                return
            if kind != "lap":
                await self._flush_timing(lr)
            run = lr.machine.run
            same_run = run is not None and event.get("run_id") in (None, run.run_id)
            if kind == "countdown" and run is not None and same_run and run.phase == "countdown":
                value = int(event.get("value", event.get("n", 0)))
                await self._transition(lr, lambda m: m.tick(lr.at(run.go_at - value)))
            elif kind in ("go", "run_started") and run is not None and same_run and run.phase == "countdown":

                async def running(conn: asyncpg.Connection) -> list[Event]:
                    await races.set_run_status(conn, run.run_id, "running")
                    return []

                await self._transition(lr, lambda m: m.tick(lr.at(run.go_at)), running)
            elif kind == "lap":
                await self._lap(lr, event)
            elif kind == "run_end" and run is not None and same_run:
                reason = str(event.get("reason", "time_up"))
                if reason == "time_up":
                    await self._checkered(lr, run)
                elif run.phase in ("countdown", "running"):
                    await self._run_failed_locked(lr, run.run_id, reason)
            elif kind == "host_error" and lr.machine.simulator in ("launching", "running"):
                message = str(event.get("message", "simulator error"))

                async def failed(conn: asyncpg.Connection) -> list[Event]:
                    if run is not None:
                        await races.set_run_status(conn, run.run_id, "failed", message)
                    return []

                await self._transition(lr, lambda m: m.simulator_failed(message, lr.now()), failed)

    async def _store_timing(self, lr: LiveRace) -> None:
        async with lr.lock:
            await self._flush_timing(lr)

    async def _flush_timing(self, lr: LiveRace) -> None:
        """Store held-back timing events (caller holds ``lr.lock``)."""
        if lr.timing:
            held, lr.timing = lr.timing, []
            await store(self.pool, self.bus, lr.race_id, held)

    async def _telemetry(self, lr: LiveRace, event: dict[str, Any]) -> None:
        shaped = shape({**event, "race_id": lr.race_id})
        if shaped is None:
            return
        lr.last_telemetry = shaped
        trace = lr.traces.get(int(event.get("run_id", 0)))
        if trace is not None and len(trace) < 200_000:
            trace.append(event)
        lr.telemetry_seq += 1
        # Telemetry is not stored: a string id marks it as live-only (never replayed, never deduped).
        await publish(self.bus, lr.race_id, [{**shaped, "id": f"t{lr.telemetry_seq}"}])

    async def _lap(self, lr: LiveRace, event: dict[str, Any]) -> None:
        shaped = shape({**event, "race_id": lr.race_id})
        if shaped is None:
            return

        async def record(conn: asyncpg.Connection) -> list[Event]:
            await races.insert_lap(conn, lr.race_id, shaped)
            return []

        async def board(conn: asyncpg.Connection) -> list[Event]:
            return [leaderboard_event(await leaderboard(conn, lr.race_id, lr.config))]

        # Two steps so spectators get the lap without waiting for the leaderboard's round trips.
        # A crash between them loses nothing: the leaderboard is derived from the stored laps
        # (snapshots rebuild it, and _recover publishes a fresh one for clients resuming from the log).
        # The lap goes out before the sector that ended it (held back, see _on_host_event): every
        # connection gets one frame per round of the fan-out, so the lap reaches all 500 a round earlier.
        held, lr.timing = lr.timing, []
        await store(self.pool, self.bus, lr.race_id, [shaped, *held], record)
        await store(self.pool, self.bus, lr.race_id, [], board)

    async def _checkered(self, lr: LiveRace, run: Run) -> None:
        async def completed(conn: asyncpg.Connection) -> list[Event]:
            await races.set_run_status(conn, run.run_id, "completed", "time_up")
            return []

        if run.phase in ("countdown", "running"):
            await self._transition(lr, lambda m: m.tick(lr.at(max(run.go_at, run.ends_at))), completed)
        self._write_trace(lr, run.run_id)
        self._spawn(lr, self._end_replay(lr, run), "replay")

    async def _end_replay(self, lr: LiveRace, run: Run) -> None:
        await asyncio.sleep(lr.machine.settings.replay_s)
        async with lr.lock:
            current = lr.machine.run
            if current is None or current.run_id != run.run_id or current.phase != "replay":
                return
            await self._transition(lr, lambda m: m.tick(lr.at(run.replay_ends_at)))
        if self.on_replay_ended is not None:
            await self.on_replay_ended(lr.race_id)

    async def _run_failed(self, lr: LiveRace, run_id: int, reason: str) -> None:
        async with lr.lock:
            await self._run_failed_locked(lr, run_id, reason)

    async def _run_failed_locked(self, lr: LiveRace, run_id: int, reason: str) -> None:
        run = lr.machine.run
        if run is None or run.run_id != run_id or not lr.machine.run_in_progress:
            return

        async def failed(conn: asyncpg.Connection) -> list[Event]:
            await races.set_run_status(conn, run_id, "failed", reason)
            return []

        await self._transition(lr, lambda m: m.run_failed(reason, lr.now()), failed)
        self._write_trace(lr, run_id)

    def _write_trace(self, lr: LiveRace, run_id: int) -> None:
        rows = lr.traces.pop(run_id, None)
        if rows:
            from race_server.queue.run_logs import write_run_logs

            folder = self.run_dir(lr.race_id, run_id)
            route = (lr.config.route_id, lr.config.reverse)
            self._spawn(lr, asyncio.to_thread(write_run_logs, folder, rows, route), "run-logs")

    def run_dir(self, race_id: int, run_id: int) -> Path:
        return self.data_dir / "races" / str(race_id) / "runs" / str(run_id)
