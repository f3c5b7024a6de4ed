"""Shared test helpers: users, logged-in clients and API tokens against a live server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx

from race_server import auth
from race_server.db import users
from race_server.settings import Settings
from tests.conftest import LiveServer

PASSWORD = "correct horse battery"


async def make_user(settings: Settings, role: str, email: str, alias: str | None = None) -> int:
    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url)
    try:
        user = await users.create(
            conn, role=role, email=email, password_hash=await auth.hash_password(PASSWORD), alias=alias
        )
    finally:
        await conn.close()
    return user.id


@asynccontextmanager
async def login(live_server: LiveServer, email: str, password: str = PASSWORD) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as client:
        response = await client.post("/api/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        yield client


async def api_token(live_server: LiveServer, email: str, name: str = "cli") -> str:
    async with login(live_server, email) as client:
        response = await client.post("/api/tokens", json={"name": name})
        assert response.status_code == 201, response.text
        return str(response.json()["token"])
