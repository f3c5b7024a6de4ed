"""Identity over real HTTP and websockets: organizers, racers, sessions, tokens, roles."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from race_server import auth
from race_server.db import users
from race_server.settings import Settings
from tests.conftest import LiveServer

PASSWORD = "correct horse battery"


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        yield client


async def make_user(settings: Settings, role: str, email: str, alias: str | None = None) -> None:
    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url)
    try:
        await users.create(conn, role=role, email=email, password_hash=await auth.hash_password(PASSWORD), alias=alias)
    finally:
        await conn.close()


@asynccontextmanager
async def login(live_server: LiveServer, email: str, password: str = PASSWORD) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        response = await client.post("/api/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        yield client


async def ws_hello(url: str, **kwargs: object) -> dict[str, object]:
    async with websockets.connect(url, **kwargs) as ws:  # type: ignore[arg-type]
        import json

        return dict(json.loads(await ws.recv()))


async def car_welcome(url: str, **kwargs: object) -> dict[str, object]:
    from tests.fleet.helpers import hello_frame

    async with websockets.connect(url, **kwargs) as ws:  # type: ignore[arg-type]
        import json

        await ws.send(hello_frame())
        return dict(json.loads(await ws.recv()))


async def ws_close_code(url: str, **kwargs: object) -> int:
    async with websockets.connect(url, **kwargs) as ws:  # type: ignore[arg-type]
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None
        return closed.value.rcvd.code


async def test_organizer_login_me_logout(live_server: LiveServer, settings: Settings, http: httpx.AsyncClient) -> None:
    await make_user(settings, "organizer", "org@example.com")
    response = await http.post("/api/auth/login", json={"email": "ORG@example.com", "password": PASSWORD})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    me = await http.get("/api/auth/me")
    assert me.status_code == 200 and me.json()["role"] == "organizer"
    assert (await http.post("/api/auth/logout")).status_code == 200
    # The old cookie value is dead server-side, not merely forgotten by this client.
    stale = httpx.AsyncClient(
        base_url=live_server.url, cookies={auth.SESSION_COOKIE: response.cookies[auth.SESSION_COOKIE]}
    )
    async with stale:
        assert (await stale.get("/api/auth/me")).status_code == 401


async def test_wrong_password_and_forged_cookie_refused(
    live_server: LiveServer, settings: Settings, http: httpx.AsyncClient
) -> None:
    await make_user(settings, "organizer", "org@example.com")
    bad = await http.post("/api/auth/login", json={"email": "org@example.com", "password": "wrong password!"})
    assert bad.status_code == 401 and bad.json()["code"] == "bad_credentials"
    forged = httpx.AsyncClient(base_url=live_server.url, cookies={auth.SESSION_COOKIE: "tss_forged.signature"})
    async with forged:
        assert (await forged.get("/api/auth/me")).status_code == 401


async def test_failed_logins_are_rate_limited(
    live_server: LiveServer, settings: Settings, http: httpx.AsyncClient
) -> None:
    await make_user(settings, "racer", "r@example.com", alias="racer-one")
    for _ in range(settings.login_max_failures):
        response = await http.post("/api/auth/login", json={"email": "r@example.com", "password": "not the one!"})
        assert response.status_code == 401
    # Even the right password is refused while the limit holds.
    limited = await http.post("/api/auth/login", json={"email": "r@example.com", "password": PASSWORD})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) == settings.login_window_s


async def test_signup_needs_invitation_unless_open(
    live_server: LiveServer, settings: Settings, http: httpx.AsyncClient
) -> None:
    await make_user(settings, "organizer", "org@example.com")
    body = {"email": "new@example.com", "password": PASSWORD, "alias": "Speedy"}
    refused = await http.post("/api/auth/signup", json=body)
    assert refused.status_code == 403 and refused.json()["code"] == "invitation_required"
    async with login(live_server, "org@example.com") as organizer:
        invite = await organizer.post("/api/invitations", json={"max_uses": 1})
        assert invite.status_code == 201
        code = invite.json()["code"]
        created = await http.post("/api/auth/signup", json={**body, "invitation": code})
        assert created.status_code == 201 and created.json()["role"] == "racer"
        used_up = await http.post(
            "/api/auth/signup", json={"email": "b@example.com", "password": PASSWORD, "invitation": code}
        )
        assert used_up.status_code == 403
        assert (await organizer.put("/api/server/signup-mode", json={"mode": "open"})).status_code == 200
        opened = await http.post("/api/auth/signup", json={"email": "b@example.com", "password": PASSWORD})
        assert opened.status_code == 201
        taken = await http.post(
            "/api/auth/signup", json={"email": "c@example.com", "password": PASSWORD, "alias": "speedy"}
        )
        assert taken.status_code == 409


async def test_alias_is_fixed_once_chosen(live_server: LiveServer, settings: Settings) -> None:
    await make_user(settings, "racer", "r@example.com")
    async with login(live_server, "r@example.com") as racer:
        assert (await racer.post("/api/auth/alias", json={"alias": "no"})).status_code == 422
        assert (await racer.post("/api/auth/alias", json={"alias": "FastOne"})).status_code == 200
        again = await racer.post("/api/auth/alias", json={"alias": "Another"})
        assert again.status_code == 409 and again.json()["code"] == "alias_fixed"
        assert (await racer.get("/api/auth/me")).json()["alias"] == "FastOne"


async def test_api_token_create_use_revoke(live_server: LiveServer, settings: Settings) -> None:
    await make_user(settings, "racer", "r@example.com", alias="tokenman")
    async with login(live_server, "r@example.com") as racer:
        created = await racer.post("/api/tokens", json={"name": "laptop cli"})
        assert created.status_code == 201
        token, token_id = created.json()["token"], created.json()["id"]
        listed = (await racer.get("/api/tokens")).json()["tokens"]
        assert [t["id"] for t in listed] == [token_id] and "token" not in listed[0]
        async with httpx.AsyncClient(base_url=live_server.url, headers={"authorization": f"Bearer {token}"}) as cli:
            assert (await cli.get("/api/auth/me")).json()["alias"] == "tokenman"
            assert (await racer.delete(f"/api/tokens/{token_id}")).status_code == 200
            assert (await cli.get("/api/auth/me")).status_code == 401
        assert (await racer.delete(f"/api/tokens/{token_id}")).status_code == 404
    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url)
    try:
        stored = await conn.fetchval("SELECT token_hash FROM api_tokens WHERE id = $1", token_id)
    finally:
        await conn.close()
    assert stored == auth.digest(token) and token.encode() not in stored


async def test_wrong_role_refused_over_http(
    live_server: LiveServer, settings: Settings, http: httpx.AsyncClient
) -> None:
    assert (await http.get("/api/auth/me")).status_code == 401
    assert (await http.post("/api/invitations", json={})).status_code == 401
    await make_user(settings, "racer", "r@example.com", alias="racerx")
    async with login(live_server, "r@example.com") as racer:
        refused = await racer.post("/api/invitations", json={})
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        assert (await racer.put("/api/server/signup-mode", json={"mode": "open"})).status_code == 403
        assert (await racer.post("/api/tokens", json={"name": "v", "kind": "viewer"})).status_code == 403
        car = await racer.post("/api/cars", json={"name": "garage car"})
        assert car.status_code == 201
        car_token = car.json()["token"]
    # A car may speak on its link, but not act as its owner.
    async with httpx.AsyncClient(base_url=live_server.url, headers={"authorization": f"Bearer {car_token}"}) as as_car:
        assert (await as_car.get("/api/auth/me")).json()["role"] == "car"
        assert (await as_car.post("/api/tokens", json={"name": "escalate"})).status_code == 403


async def test_websocket_authentication_and_roles(live_server: LiveServer, settings: Settings) -> None:
    base = live_server.ws_url
    assert await ws_close_code(f"{base}/ws") == auth.WS_UNAUTHENTICATED
    assert await ws_close_code(f"{base}/ws?token=tsk_not_a_real_token") == auth.WS_UNAUTHENTICATED

    await make_user(settings, "racer", "r@example.com", alias="wsracer")
    async with login(live_server, "r@example.com") as racer:
        cookie = f"{auth.SESSION_COOKIE}={racer.cookies[auth.SESSION_COOKIE]}"
        hello = await ws_hello(f"{base}/ws", additional_headers={"Cookie": cookie})
        assert hello["type"] == "hello" and hello["principal"]["alias"] == "wsracer"  # type: ignore[index]
        # The car link is for cars only.
        assert await ws_close_code(f"{base}/ws/car", additional_headers={"Cookie": cookie}) == auth.WS_FORBIDDEN
        car = (await racer.post("/api/cars", json={"name": "car-1"})).json()
    # The car speaks first (car_hello) and is welcomed by its id (tests/fleet test the protocol).
    welcome = await car_welcome(f"{base}/ws/car", additional_headers={"Authorization": f"Bearer {car['token']}"})
    assert welcome["type"] == "welcome" and welcome["car_id"] == car["car_id"]
    # Browsers cannot set headers on a websocket: the token may ride in the query string.
    welcome = await car_welcome(f"{base}/ws/car?token={car['token']}")
    assert welcome["car_id"] == car["car_id"]


async def test_invalid_input_gets_clear_errors(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    not_json = await http.post("/api/auth/login", content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and "JSON" in not_json.json()["error"]
    missing = await http.post("/api/auth/login", json={"email": "x@example.com"})
    assert missing.status_code == 422 and "password" in missing.json()["error"]
    short = await http.post("/api/auth/signup", json={"email": "x@example.com", "password": "short"})
    assert short.status_code == 422 and "10 to 256" in short.json()["error"]
