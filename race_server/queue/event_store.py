"""A race's event log: store events in one transaction with what they describe, then publish them.

The log in PostgreSQL is the truth; the bus channel ``race:<id>`` carries the same events live. A
client that missed something replays it from the log by event id. ``transition`` is the one way a
LIVE race's queue machine changes: the machine's events and state are stored together, and if
storing fails the machine is put back as it was, so memory never runs ahead of the log.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import typing
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from race_server import protocol
from race_server.bus import BusError, EventBus
from race_server.db import race_events, races
from race_server.db.outage import is_outage
from race_server.queue.live_race import LiveRace
from race_server.queue.machine import QueueMachine
from race_server.queue.persistence import dump_machine
from race_server.races.config import RaceConfig
from race_server.races.leaderboard import LeaderboardRow, build_leaderboard

log = logging.getLogger("trackside.queue")

Event = dict[str, Any]
Work = Callable[[asyncpg.Connection], Awaitable[Sequence[Event]]]


class DatabaseUnavailable(Exception):
    """The database could not be reached; nothing was stored (the caller may retry)."""


def channel(race_id: int) -> str:
    return f"race:{race_id}"


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


async def store(pool: asyncpg.Pool, bus: EventBus, race_id: int, events: Sequence[Event],
                work: Work | None = None) -> list[Event]:  # fmt: skip
    """Store events (plus those ``work`` returns, run in the same transaction), then publish them."""
    try:
        async with pool.acquire() as conn:
            async with conn.transaction():
                more = list(await work(conn)) if work is not None else []
                stored = await race_events.append(conn, race_id, [*events, *more])
            # Published before the connection goes back to the pool: its reset is one more round trip.
            await publish(bus, race_id, stored)
    except Exception as error:
        if is_outage(error):
            raise DatabaseUnavailable(str(error) or type(error).__name__) from error
        raise
    return stored


class EventStore:
    """``store`` and ``transition`` bound to one pool and bus."""

    def __init__(self, pool: asyncpg.Pool, bus: EventBus) -> None:
        self.pool = pool
        self.bus = bus

    async def append(self, race_id: int, events: Sequence[Event], work: Work | None = None) -> list[Event]:
        return await store(self.pool, self.bus, race_id, events, work)

    async def publish(self, race_id: int, events: Sequence[Event]) -> None:
        await publish(self.bus, race_id, events)

    async def transition(
        self, lr: LiveRace, command: Callable[[QueueMachine], list[Event]], work: Work | None = None
    ) -> list[Event]:
        """Run a machine command and persist + publish its events (caller holds ``lr.lock``)."""
        backup = copy.deepcopy(lr.machine)
        try:
            events = command(lr.machine)

            async with self.pool.acquire() as conn, conn.transaction():
                more = list(await work(conn)) if work is not None else []
                await races.save_queue_state(conn, lr.race_id, dump_machine(lr.machine, lr.now()))
                stored = await race_events.append(conn, lr.race_id, [*events, *more])
        except BaseException as error:
            lr.machine = backup
            if is_outage(error):
                raise DatabaseUnavailable(str(error) or type(error).__name__) from error
            raise
        await publish(self.bus, lr.race_id, stored)
        return stored


async def until_stored(lr: LiveRace, attempt: Callable[[], Awaitable[None]], *, max_backoff_s: float = 2.0) -> None:
    """Run ``attempt`` until the database takes it: a race's host events and timers must not be lost
    to an outage. ``lr.degraded`` says why the race is waiting meanwhile."""
    backoff = 0.1
    while True:
        try:
            await attempt()
        except DatabaseUnavailable as error:
            if lr.degraded is None:
                log.warning("race %s: database unavailable, holding its events until it is back: %s",
                            lr.race_id, error)  # fmt: skip
            lr.degraded = str(error)
            lr.outage.set()
            await asyncio.sleep(backoff)  # nothing to await: the database gives no signal when it is back
            backoff = min(backoff * 2, max_backoff_s)
            continue
        if lr.degraded is not None:
            log.warning("race %s: database back, stored what was held", lr.race_id)
            lr.degraded = None
            lr.outage.clear()
        return
