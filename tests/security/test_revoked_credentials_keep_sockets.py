"""Threat: a credential is revoked (token revoked, cookie session logged out, role changed) but a
websocket opened with it stays open and keeps running commands. Each socket must close (4401) within
a second and a command sent after the revocation must never run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import asyncpg
import websockets
from websockets.exceptions import ConnectionClosed

from race_server import auth
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.races_api.helpers import cookie_of, live_config, login, make_user, race_socket

CLOSE_WITHIN_S = 1.0


async def _closed_within(ws: Any) -> tuple[int, float]:
    """The close code and how long after now it came (frames before it are skipped)."""
    started = time.monotonic()
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 5.0)
    except ConnectionClosed as closed:
        return (closed.rcvd.code if closed.rcvd is not None else -1), time.monotonic() - started


async def _entries_open(settings: Settings, race_id: int) -> bool:
    """From the stored queue state: a race whose queue never changed has none (entries open)."""
    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url)
    try:
        value = await conn.fetchval("SELECT queue_state->'snapshot'->>'entries_open' FROM races WHERE id = $1", race_id)
    finally:
        await conn.close()
    return value in (None, "true")


async def _send_command(ws: Any, race_id: int) -> None:
    with contextlib.suppress(ConnectionClosed):
        await ws.send(json.dumps({"v": 1, "type": "set_entries_open", "req": 99, "race_id": race_id, "open": False}))


async def test_revoked_token_closes_race_socket_and_its_next_command_never_runs(
    server: LiveServer, settings: Settings
) -> None:
    await make_user(settings, "organizer", "org@example.com")
    org = await login(server, "org@example.com")
    race_id = (await org.post("/api/races", json=live_config())).json()["id"]
    created = (await org.post("/api/tokens", json={"name": "laptop"})).json()
    headers = {"Authorization": f"Bearer {created['token']}"}
    async with websockets.connect(f"{server.ws_url}/ws/races/{race_id}", additional_headers=headers) as ws:
        await ws.send(json.dumps({"v": 1, "type": "ping", "req": 1}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ok"
        assert (await org.delete(f"/api/tokens/{created['id']}")).status_code == 200
        await _send_command(ws, race_id)
        code, elapsed = await _closed_within(ws)
    assert code == auth.WS_UNAUTHENTICATED
    assert elapsed < CLOSE_WITHIN_S
    assert await _entries_open(settings, race_id), "the revoked token's command ran"
    await org.aclose()


async def test_logout_closes_the_cookie_sessions_sockets(server: LiveServer, settings: Settings) -> None:
    await make_user(settings, "organizer", "org@example.com")
    org = await login(server, "org@example.com")
    race_id = (await org.post("/api/races", json=live_config())).json()["id"]
    session = await login(server, "org@example.com")
    async with (
        race_socket(server, race_id, cookie=cookie_of(session)) as race_ws,
        websockets.connect(f"{server.ws_url}/ws", additional_headers={"Cookie": cookie_of(session)}) as general,
    ):
        assert (await race_ws.command("ping"))["type"] == "ok"
        assert json.loads(await asyncio.wait_for(general.recv(), 10))["type"] == "hello"
        assert (await session.post("/api/auth/logout")).status_code == 200
        await _send_command(race_ws.ws, race_id)
        for ws in (race_ws.ws, general):
            code, elapsed = await _closed_within(ws)
            assert code == auth.WS_UNAUTHENTICATED
            assert elapsed < CLOSE_WITHIN_S
    assert await _entries_open(settings, race_id)
    await org.aclose()
    await session.aclose()


async def test_revoked_server_viewer_token_stops_streaming(server: LiveServer, settings: Settings) -> None:
    await make_user(settings, "organizer", "org@example.com")
    org = await login(server, "org@example.com")
    race_id = (await org.post("/api/races", json=live_config())).json()["id"]
    viewer = (await org.post("/api/tokens", json={"name": "big screen", "kind": "viewer"})).json()
    url = f"{server.ws_url}/ws/races/{race_id}?token={viewer['token']}"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"v": 1, "type": "subscribe", "req": 1, "race_id": race_id}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ok"
        assert (await org.delete(f"/api/tokens/{viewer['id']}")).status_code == 200
        code, elapsed = await _closed_within(ws)
    assert code == auth.WS_UNAUTHENTICATED
    assert elapsed < CLOSE_WITHIN_S
    await org.aclose()


async def test_role_change_made_outside_the_api_closes_sockets_within_a_second(
    server: LiveServer, settings: Settings
) -> None:
    """An operator demotes an organizer in the database (another process, no HTTP call here)."""
    org_id = await make_user(settings, "organizer", "org@example.com")
    org = await login(server, "org@example.com")
    race_id = (await org.post("/api/races", json=live_config())).json()["id"]
    async with race_socket(server, race_id, cookie=cookie_of(org)) as ws:
        assert (await ws.command("ping"))["type"] == "ok"
        assert settings.database_url is not None
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute("UPDATE users SET role = 'racer' WHERE id = $1", org_id)
        finally:
            await conn.close()
        code, elapsed = await _closed_within(ws.ws)
    assert code == auth.WS_UNAUTHENTICATED
    assert elapsed < CLOSE_WITHIN_S
    await org.aclose()
