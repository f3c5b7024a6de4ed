"""Threat: inputs the handlers never expected (ids beyond int64, NUL and lone surrogates, deeply
nested JSON, huge integers, binary frames) crash a request into a plain 500 with a logged traceback,
or drop a websocket without a close code. Each must get the one JSON error shape (or a protocol
error reply / a proper close code) and leave the server serving."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from race_server import auth
from race_server.api.car_ws import WS_NO_HELLO
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.helpers import PASSWORD
from tests.models.builders import write_trackside_folder
from tests.races_api.helpers import cookie_of, live_config, login, make_user, race_socket

HUGE_ID = str(2**70)


async def _drain(ws: Any) -> None:
    while True:
        await asyncio.wait_for(ws.recv(), 10)


def assert_json_error(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    body: dict[str, Any] = response.json()
    assert isinstance(body.get("error"), str) and isinstance(body.get("code"), str), body
    return body


async def test_ids_beyond_int64_are_not_found(server: LiveServer, settings: Settings) -> None:
    await make_user(settings, "organizer", "org@example.com")
    org = await login(server, "org@example.com")
    for method, path in [
        ("GET", f"/api/models/{HUGE_ID}"),
        ("GET", f"/api/jobs/{HUGE_ID}"),
        ("GET", f"/api/races/{HUGE_ID}"),
        ("DELETE", f"/api/tokens/{HUGE_ID}"),
        ("GET", f"/api/races/1/runs/{HUGE_ID}/metrics.json"),
    ]:
        assert_json_error(await org.request(method, path), 404)
    await org.aclose()


async def test_nul_and_lone_surrogates_in_strings(server: LiveServer, settings: Settings) -> None:
    await make_user(settings, "organizer", "org@example.com")
    org = await login(server, "org@example.com")
    json_headers = {"content-type": "application/json"}
    for text in ("a\\u0000b", "\\ud800"):
        login_body = f'{{"email": "x{text}@example.com", "password": "correct horse battery"}}'
        assert_json_error(await org.post("/api/auth/login", content=login_body, headers=json_headers), 400)
        token_body = f'{{"name": "cli{text}"}}'
        assert_json_error(await org.post("/api/tokens", content=token_body, headers=json_headers), 400)
        race = live_config()
        race_body = json.dumps(race).replace('"Friday night LIVE"', f'"LIVE{text}"')
        assert_json_error(await org.post("/api/races", content=race_body, headers=json_headers), 400)
    assert_json_error(await org.post("/api/join/a%00b"), 400)
    assert_json_error(await org.get("/api/auth/me?x=%00"), 400)
    assert (await org.get("/api/auth/me")).status_code == 200
    await org.aclose()


async def test_deep_json_and_huge_integers_under_the_size_limit(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        headers = {"content-type": "application/json"}
        for body in ("[" * 30000, '{"email": ' + "9" * 5000 + "}", '{"a":' * 100 + "1" + "}" * 100, '{"x": NaN}'):
            response = await client.post("/api/auth/login", content=body, headers=headers)
            assert_json_error(response, 400)
        # ``application/json`` is required: a cross-site form can send text/plain without a preflight.
        plain = await client.post(
            "/api/auth/login",
            content='{"email": "a@example.com", "password": "correct horse battery"}',
            headers={"content-type": "text/plain"},
        )
        assert_json_error(plain, 415)
        assert_json_error(await client.get("/no/such/page"), 404)


async def test_hostile_websocket_frames_get_error_replies_or_close_codes(
    server: LiveServer, settings: Settings
) -> None:
    await make_user(settings, "organizer", "org@example.com")
    org = await login(server, "org@example.com")
    race_id = (await org.post("/api/races", json=live_config())).json()["id"]
    async with race_socket(server, race_id, cookie=cookie_of(org)) as ws:
        for frame in (
            "[" * 30000,
            json.dumps({"v": 1, "type": "subscribe", "req": 1, "race_id": race_id, "last_event_id": 2**70}),
            '{"v": 1, "type": "ping", "req": "\\ud800"}',
            '{"v": 1, "type": "ping", "req": ' + "[" * 500 + "]" * 500 + "}",
        ):
            await ws.ws.send(frame)
            reply = json.loads(await asyncio.wait_for(ws.ws.recv(), 10))
            assert reply["type"] == "error", reply
        assert (await ws.command("ping"))["type"] == "ok"  # still serving
    async with websockets.connect(f"{server.ws_url}/ws", additional_headers={"Cookie": cookie_of(org)}) as general:
        assert json.loads(await asyncio.wait_for(general.recv(), 10))["type"] == "hello"
        await general.send(b"\x00\x01binary")
        with pytest.raises(ConnectionClosed) as closed:
            await _drain(general)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == auth.WS_UNSUPPORTED_DATA
    car = (await org.post("/api/cars", json={"name": "garage"})).json()["token"]
    async with websockets.connect(f"{server.ws_url}/ws/car?token={car}") as car_link:
        # The car link speaks first (car_hello); a garbage binary frame gets the car protocol's error
        # reply, then a close that says what was expected.
        await car_link.send(b"\x00\x01binary")
        reply = json.loads(await asyncio.wait_for(car_link.recv(), 10))
        assert reply["type"] == "error", reply
        with pytest.raises(ConnectionClosed) as closed:
            await _drain(car_link)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == WS_NO_HELLO
    await org.aclose()


async def test_nul_in_a_folder_uploads_form_fields(server: LiveServer, settings: Settings, tmp_path: Path) -> None:
    """Multipart form fields bypass the JSON edge; they get the same string rules."""
    await make_user(settings, "racer", "r@example.com", alias="racer-one")
    folder = write_trackside_folder(tmp_path / "picked")
    files = [
        ("files", (f"picked/{p.relative_to(folder).as_posix()}", p.read_bytes(), "application/octet-stream"))
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as racer:
        body = {"email": "r@example.com", "password": PASSWORD}
        assert (await racer.post("/api/auth/login", json=body)).status_code == 200
        for fields in ({"name": "evil\x00name"}, {"name": "fine", "description": "a\x00b"}):
            assert_json_error(await racer.post("/api/models/import", data=fields, files=files), 422)
        assert (await racer.get("/api/models")).json()["models"] == []
