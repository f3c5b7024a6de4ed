"""Shared by the races API tests: users, logins, races and a websocket client that keeps order."""

# ruff: noqa: ASYNC109  (a per-wait deadline is the point of these helpers)

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from race_server import auth
from tests.conftest import LiveServer
from tests.helpers import PASSWORD as PASSWORD  # re-exported for the race tests
from tests.helpers import make_user as make_user

TRACK = "Bowtie_track"  # 17 m: laps of ~9 s for the reference driver


async def login(server: LiveServer, email: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url)
    response = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return client


def cookie_of(client: httpx.AsyncClient) -> str:
    return f"{auth.SESSION_COOKIE}={client.cookies[auth.SESSION_COOKIE]}"


def live_config(**changes: Any) -> dict[str, Any]:
    return {
        "name": "Friday night LIVE",
        "format": "live",
        "track_id": TRACK,
        "start": "2020-01-01T18:00:00+00:00",
        "end": "2099-01-01T18:00:00+00:00",
        "time_per_racer_min": 1,
        "replay_s": 0,
        **changes,
    }


def classic_config(**changes: Any) -> dict[str, Any]:
    return {
        "name": "Classic cup",
        "format": "classic",
        "track_id": TRACK,
        "start": "2020-01-01T18:00:00+00:00",
        "end": "2099-01-01T18:00:00+00:00",
        **changes,
    }


class RaceSocket:
    """A websocket client that answers ``command`` with the reply and keeps every other message
    in arrival order for ``next`` / ``wait``."""

    _reqs = itertools.count(1)

    def __init__(self, ws: ClientConnection, race_id: int) -> None:
        self.ws = ws
        self.race_id = race_id
        self.seen: list[dict[str, Any]] = []
        self.pos = 0

    async def _read(self, timeout: float) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        message: dict[str, Any] = json.loads(raw)
        return message

    async def command(self, kind: str, timeout: float = 30.0, **fields: Any) -> dict[str, Any]:
        req = next(self._reqs)
        target = {} if kind == "ping" else {"race_id": self.race_id}
        await self.ws.send(json.dumps({"v": 1, "type": kind, "req": req, **target, **fields}))
        while True:
            message = await self._read(timeout)
            if message.get("req") == req and message["type"] in ("ok", "error"):
                return message
            self.seen.append(message)

    async def wait(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            while self.pos < len(self.seen):
                message = self.seen[self.pos]
                self.pos += 1
                if predicate(message):
                    return message
            self.seen.append(await self._read(max(0.01, deadline - loop.time())))

    async def wait_type(self, kind: str, timeout: float = 60.0, **match: Any) -> dict[str, Any]:
        return await self.wait(lambda m: m["type"] == kind and all(m.get(k) == v for k, v in match.items()), timeout)

    async def close_code(self, timeout: float = 10.0) -> int:
        try:
            while True:
                self.seen.append(await self._read(timeout))
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else -1


@asynccontextmanager
async def race_socket(server: LiveServer, race_id: int, *, cookie: str | None = None,
                      query: str = "") -> AsyncIterator[RaceSocket]:  # fmt: skip
    headers = {"Cookie": cookie} if cookie else {}
    url = f"{server.ws_url}/ws/races/{race_id}{query}"
    async with websockets.connect(url, additional_headers=headers, max_size=2**22) as ws:
        yield RaceSocket(ws, race_id)
