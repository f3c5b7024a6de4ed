"""Which server process runs a LIVE race: a PostgreSQL advisory lock per race.

All of this process's leases live on ONE connection, taken from the pool while at least one race
is owned and given back when none is: a race costs no connection of its own, so any number of
LIVE races leave the pool to the API. A session lock dies with its connection, so a killed process
loses its races at once and another (or the restarted one) takes them over. After a database
outage the connection is gone and with it the locks; ``renew`` takes them again, and reports the
races another process took meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

# Advisory locks are per database, and several Trackside installs (or test runs) may share one
# database in separate schemas: the lock's namespace is the schema's.
_LOCK = "pg_try_advisory_lock(hashtext('trackside-race:' || current_schema()), $1)"
_UNLOCK = "pg_advisory_unlock(hashtext('trackside-race:' || current_schema()), $1)"


class RaceLeases:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.held: set[int] = set()
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def acquire(self, race_id: int) -> bool:
        async with self._lock:
            conn = await self._connection()
            got = bool(await conn.fetchval(f"SELECT {_LOCK}", race_id))
            if got:
                self.held.add(race_id)
            else:
                await self._release_if_idle()
            return got

    async def release(self, race_id: int) -> None:
        async with self._lock:
            if race_id not in self.held:
                return
            self.held.discard(race_id)
            if self.connected and self._conn is not None:
                with contextlib.suppress(Exception):
                    await self._conn.execute(f"SELECT {_UNLOCK}", race_id)
            await self._release_if_idle()

    async def renew(self) -> set[int]:
        """After the lease connection was lost: lock every held race again; returns those lost."""
        async with self._lock:
            if self.connected or not self.held:
                return set()
            conn = await self._connection()
            lost: set[int] = set()
            for race_id in sorted(self.held):
                if not await conn.fetchval(f"SELECT {_LOCK}", race_id):
                    lost.add(race_id)
            self.held -= lost
            await self._release_if_idle()
            return lost

    async def close(self) -> None:
        async with self._lock:
            self.held.clear()
            await self._release_if_idle()

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is not None and self._conn.is_closed():
            await self._drop()
        if self._conn is None:
            self._conn = await self.pool.acquire()
        return self._conn

    async def _release_if_idle(self) -> None:
        if not self.held:
            await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # Unlocks whatever is still locked: a pooled connection's reset runs pg_advisory_unlock_all.
            with contextlib.suppress(Exception):
                await self.pool.release(conn)
