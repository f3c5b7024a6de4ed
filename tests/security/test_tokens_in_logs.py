"""Threat: whoever reads the server's logs (a shared terminal, a log shipper, a bug report) collects
working tokens, because websocket clients carry them in the URL and uvicorn logs URLs. No token may
appear in any log line, uvicorn's own (websocket and access) lines included."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import pytest
import websockets

from race_server.logs import configure_logging
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.races_api.helpers import live_config, login, make_user


@pytest.fixture
def server_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """The server's real logging set-up, writing to the captured stderr; uvicorn's access log on."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("info", "json")
    access = logging.getLogger("uvicorn.access")
    access.disabled = False
    try:
        yield capsys
    finally:
        access.disabled = True
        root.handlers, root.level = saved[0], saved[1]


async def test_no_token_reaches_a_log_line(
    server: LiveServer, settings: Settings, server_logs: pytest.CaptureFixture[str]
) -> None:
    await make_user(settings, "organizer", "org@example.com")
    org = await login(server, "org@example.com")
    race = (await org.post("/api/races", json=live_config())).json()
    race_id = race["id"]
    token = (await org.post("/api/tokens", json={"name": "cli"})).json()["token"]
    car = (await org.post("/api/cars", json={"name": "garage"})).json()["token"]
    viewer = (await org.post(f"/api/races/{race_id}/viewer-token")).json()["token"]
    secrets = [token, car, viewer]
    for url in (
        f"{server.ws_url}/ws?token={token}",
        f"{server.ws_url}/ws/car?token={car}",
        f"{server.ws_url}/ws/races/{race_id}?viewer={viewer}",
        f"{server.ws_url}/ws/races/{race_id}?token={token}&format=json",
    ):
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"v": 1, "type": "ping", "req": 1}))
            await asyncio.wait_for(ws.recv(), 10)
    assert (await org.get(f"/api/auth/me?token={token}")).status_code == 200
    assert (await org.post(f"/api/join/{race['invite_code']}")).status_code == 403  # an organizer cannot join
    await org.aclose()
    logged = server_logs.readouterr().err
    assert "WebSocket /ws" in logged, "uvicorn's websocket lines were not captured: the test would prove nothing"
    assert "GET /api/auth/me" in logged, "uvicorn's access log was not captured"
    assert "/api/join/" in logged
    for secret in secrets:
        assert secret not in logged
        assert secret.partition("_")[2][:12] not in logged  # not even a recognisable piece
    assert race["invite_code"] not in logged  # the race's invitation link is a secret too
