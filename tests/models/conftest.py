from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from race_server import auth
from race_server.db import users
from race_server.db.migrate import migrate
from race_server.models.store import ModelStore
from tests.conftest import LiveServer


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await migrate(conn)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def owner(pool: asyncpg.Pool) -> int:
    user = await users.create(
        pool, role="racer", email="racer@example.com", password_hash=await auth.hash_password("x" * 12), alias="racer"
    )
    return user.id


@pytest.fixture
def store(pool: asyncpg.Pool, tmp_path: Path) -> ModelStore:
    return ModelStore(pool, tmp_path / "data")


@pytest.fixture
def server(live_server: LiveServer) -> LiveServer:
    """The real server (the model routes are part of the app)."""
    return live_server
