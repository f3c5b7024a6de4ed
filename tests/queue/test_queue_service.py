"""QueueService against real PostgreSQL with a scripted RaceHost: what it stores, in which order,
what it puts back when a write fails, who owns a race, and how it rides out a database outage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from race_server import protocol
from race_server.bus import InProcessBus
from race_server.db import races, users
from race_server.db.migrate import migrate
from race_server.live.events import HostEvent, from_wire
from race_server.queue.machine import QueueError
from race_server.queue.service import QueueService, RaceOwnedElsewhere, channel
from race_server.races.config import parse_race_config
from race_server.races.ranking import Lap
from tests.races_api.helpers import live_config
from tests.tcp_proxy import TcpProxy

WAIT = 20.0


class ScriptedHost:
    """A RaceHost whose events the test writes: no simulator, the queue service sees the same union."""

    def __init__(self) -> None:
        self.launched: list[Any] = []
        self.launch_seen = asyncio.Event()
        self._events: asyncio.Queue[HostEvent | None] = asyncio.Queue()

    async def start(self, route_id: str, reverse: bool, laps: Sequence[Lap] = ()) -> None:
        return None

    async def launch(self, spec: Any) -> None:
        self.launched.append(spec)
        self.launch_seen.set()

    async def set_speed_multiplier(self, multiplier: float) -> float:
        return multiplier

    async def abort(self, reason: str) -> None:
        return None

    async def clear_timing(self) -> None:
        return None

    async def close(self) -> None:
        self._events.put_nowait(None)

    def emit(self, *wire: dict[str, Any]) -> None:
        for event in wire:
            self._events.put_nowait(from_wire(event))

    async def events(self) -> AsyncIterator[HostEvent]:
        while (event := await self._events.get()) is not None:
            yield event


async def _pool(url: str) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(url, min_size=0, max_size=4)
    assert pool is not None
    return pool


@pytest.fixture
async def bus() -> AsyncIterator[InProcessBus]:
    started = InProcessBus()
    await started.start()
    yield started
    await started.close()


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await _pool(pg_url)
    async with pool.acquire() as conn:
        await migrate(conn)
    yield pool
    await pool.close()


class Race:
    def __init__(self, race_id: int, racer_id: int) -> None:
        self.id = race_id
        self.racer_id = racer_id


@pytest.fixture
async def race(pool: asyncpg.Pool) -> Race:
    organizer = await users.create(pool, role="organizer", email="o@example.com", password_hash="x", alias="org")
    racer = await users.create(pool, role="racer", email="r@example.com", password_hash="x", alias="ann")
    config = parse_race_config(live_config(replay_s=1))
    async with pool.acquire() as conn:
        created = await races.create(conn, organizer.id, config)
        await races.add_member(conn, created.id, racer.id)
        await races.add_submission(conn, race_id=created.id, racer_id=racer.id, model_id=None,
                                   driver={"kind": "reference", "reference_speed": 1.5}, loadable=True, error=None,
                                   status="entered")  # fmt: skip
    return Race(created.id, racer.id)


def service(pool: asyncpg.Pool, bus: InProcessBus, tmp_path: Path, hosts: list[ScriptedHost],
            **options: Any) -> QueueService:  # fmt: skip
    def make(race_id: int) -> ScriptedHost:
        hosts.append(ScriptedHost())
        return hosts[-1]

    return QueueService(pool, bus, tmp_path, host_factory=make, countdown_s=1, time_per_racer_s=5, **options)


async def next_of(sub: Any, kind: str, **fields: Any) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        async for event in sub:
            if isinstance(event, dict) and event.get("type") == kind and fields.items() <= event.items():
                return event
    raise AssertionError(f"subscription ended before {kind}")


async def launched_run(svc: QueueService, race: Race, sub: Any, hosts: list[ScriptedHost]) -> int:
    """Simulator up, entries closed, the racer launched: the run's id."""
    await svc.command(race.id, cmd(protocol.LaunchSimulator, race), "org")
    await next_of(sub, "simulator", status="running")
    await svc.command(race.id, cmd(protocol.SetEntriesOpen, race, open=False), "org")
    await svc.command(race.id, cmd(protocol.LaunchRacer, race, racer_id=race.racer_id), "org")
    await asyncio.wait_for(hosts[-1].launch_seen.wait(), WAIT)
    return int(hosts[-1].launched[-1].run_id)


def cmd(message: type[Any], race: Race, **fields: Any) -> Any:
    return message(req=1, race_id=race.id, **fields)


def run_event(kind: str, race: Race, run_id: int, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "race_id": race.id, "run_id": run_id, "racer_id": race.racer_id, "t": 0.0, **fields}


def lap(race: Race, run_id: int, number: int, time_ms: float) -> dict[str, Any]:
    return run_event("lap", race, run_id, lap=number, time_ms=time_ms, valid=True, colour="purple", reason=None,
                     sectors_ms=[time_ms / 3] * 3, off_track=0, collisions=0, resets=0, order=time_ms)  # fmt: skip


def sector(race: Race, run_id: int, number: int, index: int) -> dict[str, Any]:
    return run_event("sector", race, run_id, lap=number, sector=index, time_ms=3000.0, colour="green")


async def stored_types(pool: asyncpg.Pool, race_id: int) -> list[str]:
    rows = await pool.fetch("SELECT type FROM race_events WHERE race_id = $1 ORDER BY id", race_id)
    return [row["type"] for row in rows]


async def test_a_failed_write_puts_the_machine_back_and_publishes_nothing(
    pool: asyncpg.Pool, race: Race, tmp_path: Path, bus: InProcessBus
) -> None:
    svc = service(pool, bus, tmp_path, [])
    try:
        lr = await svc.live(race.id)
        stored_before = await pool.fetchval("SELECT queue_state FROM races WHERE id = $1", race.id)
        await pool.execute("""
            CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'disk full'; END $$;
            CREATE TRIGGER refuse BEFORE INSERT ON race_events FOR EACH ROW EXECUTE FUNCTION refuse();
        """)  # fmt: skip
        async with bus.subscribe(channel(race.id)) as sub:
            with pytest.raises(asyncpg.RaiseError, match="disk full"):
                await svc.command(race.id, cmd(protocol.SetEntriesOpen, race, open=False), "org")
            assert lr.machine.entries_open is True
            assert await pool.fetchval("SELECT queue_state FROM races WHERE id = $1", race.id) == stored_before

            await pool.execute("DROP TRIGGER refuse ON race_events")
            await svc.command(race.id, cmd(protocol.SetEntriesOpen, race, open=False), "org")
            first = await anext(sub)
            # nothing was stored or published by the failed attempt: this is the first event of the log
            assert isinstance(first, dict) and (first["type"], first["event_id"]) == ("entries", 1)
        assert lr.machine.entries_open is False
    finally:
        await svc.close()


async def test_a_second_process_takes_over_when_the_owner_loses_its_lease(
    pool: asyncpg.Pool, race: Race, tmp_path: Path, bus: InProcessBus, pg_url: str
) -> None:
    hosts: list[ScriptedHost] = []
    first, second = service(pool, bus, tmp_path, hosts), service(pool, bus, tmp_path, hosts)
    try:
        async with bus.subscribe(channel(race.id)) as sub:
            run_id = await launched_run(first, race, sub, hosts)
        with pytest.raises(RaceOwnedElsewhere):
            await second.live(race.id)
        assert first.leases.held == {race.id}

        # The owner's lease connection dies (as in a network cut or a killed backend).
        lease_pid = await first.leases._connection()
        # With a timeout it returns once the backend is gone, and its locks with it.
        await pool.execute("SELECT pg_terminate_backend($1, 10000)", lease_pid.get_server_pid())
        taken = await second.live(race.id)
        assert taken.machine.run is None  # the run on track was interrupted: its racer goes back on top
        assert taken.machine.queue[0].racer_id == race.racer_id and taken.machine.queue[0].relaunch
        assert await pool.fetchval("SELECT status FROM race_runs WHERE id = $1", run_id) == "interrupted"

        await first.check_leases()
        assert race.id not in first.races and first.leases.held == set()
        with pytest.raises(RaceOwnedElsewhere):
            await first.live(race.id)
    finally:
        await first.close()
        await second.close()


async def test_a_sector_is_held_back_and_stored_after_the_lap_it_ends(
    pool: asyncpg.Pool, race: Race, tmp_path: Path, bus: InProcessBus
) -> None:
    hosts: list[ScriptedHost] = []
    svc = service(pool, bus, tmp_path, hosts)
    try:
        async with bus.subscribe(channel(race.id)) as sub:
            run_id = await launched_run(svc, race, sub, hosts)
            host = hosts[-1]
            host.emit(run_event("run_started", race, run_id, slot_s=5.0))
            await next_of(sub, "run_started")
            # The host's batch at a lap's end: the last sector, then the lap.
            host.emit(sector(race, run_id, 1, 0), sector(race, run_id, 1, 1), lap(race, run_id, 1, 9000.0))
            await next_of(sub, "leaderboard")
            # A sector alone is stored by itself, without waiting for another host event.
            host.emit(sector(race, run_id, 2, 0))
            await next_of(sub, "sector", lap=2)
        types = await stored_types(pool, race.id)
        tail = types[types.index("run_started") + 1 :]
        assert tail == ["lap", "sector", "sector", "leaderboard", "sector"]
        laps = await races.laps(pool, race.id)
        assert [(lap_.run_id, lap_.time_ms) for lap_ in laps] == [(run_id, 9000.0)]
    finally:
        await svc.close()


async def test_the_replay_ends_replay_s_after_the_checkered_flag(
    pool: asyncpg.Pool, race: Race, tmp_path: Path, bus: InProcessBus
) -> None:
    hosts: list[ScriptedHost] = []
    replay_over = asyncio.Event()

    async def on_replay_ended(race_id: int) -> None:
        assert race_id == race.id
        replay_over.set()

    svc = service(pool, bus, tmp_path, hosts, on_replay_ended=on_replay_ended)
    try:
        async with bus.subscribe(channel(race.id)) as sub:
            run_id = await launched_run(svc, race, sub, hosts)
            hosts[-1].emit(run_event("run_started", race, run_id, slot_s=5.0),
                           run_event("run_end", race, run_id, reason="time_up", laps=0, message="time_up"))  # fmt: skip
            loop = asyncio.get_running_loop()
            await next_of(sub, "checkered")
            flagged = loop.time()
            lr = svc.races[race.id]
            assert lr.machine.run is not None and lr.machine.run.phase == "replay"
            await asyncio.wait_for(replay_over.wait(), WAIT)
            assert loop.time() - flagged >= 1.0 - 0.05  # replay_s = 1
            assert lr.machine.run is None
        assert await pool.fetchval("SELECT status FROM race_runs WHERE id = $1", run_id) == "completed"
    finally:
        await svc.close()


async def test_host_events_wait_out_a_database_outage_and_are_stored_after_it(
    pool: asyncpg.Pool, race: Race, tmp_path: Path, bus: InProcessBus, pg_url: str
) -> None:
    parts = urlsplit(pg_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    netloc = parts.netloc.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    through_proxy = await _pool(urlunsplit(parts._replace(netloc=netloc)))
    hosts: list[ScriptedHost] = []
    svc = service(through_proxy, bus, tmp_path, hosts)
    try:
        async with bus.subscribe(channel(race.id)) as sub:
            run_id = await launched_run(svc, race, sub, hosts)
            host = hosts[-1]
            host.emit(run_event("run_started", race, run_id, slot_s=5.0))
            await next_of(sub, "run_started")

            await proxy.cut()
            host.emit(lap(race, run_id, 1, 8000.0), lap(race, run_id, 2, 7000.0))
            lr = svc.races[race.id]
            await asyncio.wait_for(lr.outage.wait(), WAIT)  # set by the pump's first failed attempt
            assert svc.degraded() == {race.id: lr.degraded}
            with pytest.raises(QueueError):
                await svc.command(race.id, cmd(protocol.ClearLeaderboard, race), "org")  # refused, not hung
            await proxy.restore()

            await next_of(sub, "lap", lap=2)
            await svc.check_leases()
            assert svc.leases.connected and svc.leases.held == {race.id}
        assert lr.degraded is None
        laps = await races.laps(pool, race.id)
        assert sorted(lap_.time_ms for lap_ in laps) == [7000.0, 8000.0]
    finally:
        await svc.close()
        await through_proxy.close()
        await proxy.close()


async def test_a_restart_takes_back_only_races_that_are_still_on(
    pool: asyncpg.Pool, race: Race, tmp_path: Path, bus: InProcessBus
) -> None:
    hosts: list[ScriptedHost] = []
    first = service(pool, bus, tmp_path, hosts)
    async with bus.subscribe(channel(race.id)) as sub:
        await launched_run(first, race, sub, hosts)
    # A second LIVE race, also left with a running simulator, but closed by its organizer since.
    closed_id = await pool.fetchval(
        "INSERT INTO races (organizer_id, format, config, invite_code, queue_state) "
        "SELECT organizer_id, format, jsonb_set(config, '{closed}', 'true'), invite_code || 'x', queue_state "
        "FROM races WHERE id = $1 RETURNING id",
        race.id,
    )
    # The owner goes away without writing anything more (as a killed process would): the stored
    # state still says its simulator is running.
    await first.close()

    restarted = service(pool, bus, tmp_path, hosts)
    try:
        await restarted.start()
        assert set(restarted.races) == {race.id}
        assert closed_id not in restarted.races
    finally:
        await restarted.close()
