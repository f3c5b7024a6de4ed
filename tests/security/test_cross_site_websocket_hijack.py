"""Threat: a page on another site opens a websocket to Trackside from a signed-in organizer's
browser; the browser attaches the session cookie and websockets have no CORS. A cookie-signed
socket from a foreign Origin is refused (4403); this server's own pages and token clients work."""

from __future__ import annotations

import asyncio
import json

import websockets
from websockets.exceptions import ConnectionClosed

from race_server import auth
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.races_api.helpers import cookie_of, live_config, login, make_user


async def _first_or_close(url: str, headers: dict[str, str]) -> str | int:
    """The first message's type, or the close code if the socket was closed instead."""
    async with websockets.connect(url, additional_headers=headers) as ws:
        try:
            await ws.send(json.dumps({"v": 1, "type": "ping", "req": 1}))
            return str(json.loads(await asyncio.wait_for(ws.recv(), 10))["type"])
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else -1


async def test_cookie_websockets_refuse_foreign_origins(server: LiveServer, settings: Settings) -> None:
    await make_user(settings, "organizer", "org@example.com")
    org = await login(server, "org@example.com")
    race_id = (await org.post("/api/races", json=live_config())).json()["id"]
    token = (await org.post("/api/tokens", json={"name": "cli"})).json()["token"]
    cookie = cookie_of(org)
    own = f"http://127.0.0.1:{server.port}"
    for path in (f"/ws/races/{race_id}", "/ws"):
        url = f"{server.ws_url}{path}"
        assert await _first_or_close(url, {"Cookie": cookie, "Origin": "http://evil.example"}) == auth.WS_FORBIDDEN
        assert await _first_or_close(url, {"Cookie": cookie, "Origin": f"http://127.0.0.1:{server.port + 1}"}) == (
            auth.WS_FORBIDDEN
        )
        assert await _first_or_close(url, {"Cookie": cookie, "Origin": own}) in ("ok", "hello")
        # A token is not ambient (a foreign page cannot make the browser send it): no Origin rule.
        bearer = {"Authorization": f"Bearer {token}", "Origin": "http://evil.example"}
        assert await _first_or_close(url, bearer) in ("ok", "hello")
    await org.aclose()
