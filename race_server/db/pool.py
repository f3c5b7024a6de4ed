"""The asyncpg pool and where its DSN comes from (an external server or the embedded one)."""

from __future__ import annotations

import asyncpg

from race_server.settings import Settings


async def create_pool(dsn: str, settings: Settings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=settings.db_pool_max,
        command_timeout=30,
        server_settings={"application_name": "trackside"},
    )
    assert pool is not None
    return pool
