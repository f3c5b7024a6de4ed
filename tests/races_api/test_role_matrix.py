"""Every race HTTP route and websocket command × organizer / racer member / racer non-member /
viewer / car / anonymous; removals, link resets and viewer-token rotation take effect at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from race_server import auth
from race_server.protocol import ORGANIZER_COMMANDS
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.races_api.helpers import PASSWORD, cookie_of, live_config, login, make_user, race_socket

ROLES = ("anonymous", "car", "viewer", "non_member", "member", "organizer")  # organizer last: it may change things


@dataclass
class World:
    race_id: int
    code: str
    clients: dict[str, httpx.AsyncClient]
    viewer_token: str
    member_id: int


@pytest.fixture
async def world(race_server: LiveServer, settings: Settings) -> World:
    await make_user(settings, "organizer", "org@example.com")
    member_id = await make_user(settings, "racer", "member@example.com", alias="member")
    await make_user(settings, "racer", "outsider@example.com", alias="outsider")
    org = await login(race_server, "org@example.com")
    race = (await org.post("/api/races", json=live_config())).json()
    member = await login(race_server, "member@example.com")
    assert (await member.post(f"/api/join/{race['invite_code']}")).status_code == 200
    outsider = await login(race_server, "outsider@example.com")
    car = (await outsider.post("/api/cars", json={"name": "garage"})).json()["token"]
    viewer = (await org.post(f"/api/races/{race['id']}/viewer-token")).json()["token"]
    clients = {
        "anonymous": httpx.AsyncClient(base_url=race_server.url),
        "car": httpx.AsyncClient(base_url=race_server.url, headers={"authorization": f"Bearer {car}"}),
        "viewer": httpx.AsyncClient(base_url=race_server.url, headers={"authorization": f"Bearer {viewer}"}),
        "non_member": outsider,
        "member": member,
        "organizer": org,
    }
    return World(race["id"], race["invite_code"], clients, viewer, member_id)


READERS = {"organizer", "member", "viewer"}
MEMBERS = {"organizer", "member"}
ORG = {"organizer"}
# (method, path, body, allowed roles); destructive ones come last.
HTTP_MATRIX: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("GET", "", None, READERS),
    ("GET", "/leaderboard", None, READERS),
    ("GET", "/submissions", None, MEMBERS),
    ("POST", "/submissions", {"driver": "reference"}, {"member"}),
    ("GET", "/runs/999999/simtrace.csv", None, MEMBERS),
    ("GET", "/runs/999999/metrics.json", None, MEMBERS),
    ("PATCH", "", {"description": "bring snacks"}, ORG),
    ("GET", "/invitation", None, ORG),
    ("POST", "/invitation/reset", None, ORG),
    ("GET", "/participants.csv", None, ORG),
    ("DELETE", "/racers/999999", None, ORG),
    ("POST", "/viewer-token", None, ORG),
    ("POST", "/close", None, ORG),
    ("DELETE", "", None, ORG),
]


async def test_http_routes_by_role(world: World) -> None:
    for method, path, body, allowed in HTTP_MATRIX:
        for role in ROLES:
            if role == "viewer" and path == "" and method == "DELETE":
                continue
            response = await world.clients[role].request(method, f"/api/races/{world.race_id}{path}", json=body)
            denied = response.status_code in (401, 403)
            assert denied != (role in allowed), f"{method} {path} as {role}: {response.status_code} {response.text}"
    # Server-wide: only organizers create races.
    for role in ROLES:
        response = await world.clients[role].post("/api/races", json=live_config())
        assert (response.status_code == 201) == (role == "organizer"), (role, response.status_code)
    for client in world.clients.values():
        await client.aclose()


async def test_websocket_commands_by_role(race_server: LiveServer, world: World) -> None:
    c = world.clients
    expected_close = {"anonymous": auth.WS_UNAUTHENTICATED, "car": auth.WS_FORBIDDEN, "non_member": auth.WS_FORBIDDEN}
    for role, code in expected_close.items():
        headers = dict(c[role].headers)
        query = f"?token={headers['authorization'].split()[1]}" if "authorization" in headers else ""
        cookie = cookie_of(c[role]) if auth.SESSION_COOKIE in c[role].cookies else None
        async with race_socket(race_server, world.race_id, cookie=cookie, query=query) as ws:
            assert await ws.close_code() == code, role
    sockets = {
        "viewer": {"query": f"?viewer={world.viewer_token}"},
        "member": {"cookie": cookie_of(c["member"])},
        "organizer": {"cookie": cookie_of(c["organizer"])},
    }
    commands: dict[str, dict[str, Any]] = {name: {} for name in ORGANIZER_COMMANDS}
    member = {"racer_id": world.member_id}
    commands.update(set_entries_open={"open": False}, save_queue={"order": [], "version": 0},
                    launch_racer=member, relaunch_racer=member)  # fmt: skip
    for role, how in sockets.items():
        async with race_socket(race_server, world.race_id, **how) as ws:
            subscribed = await ws.command("subscribe")
            assert subscribed["type"] == "ok", (role, subscribed)
            assert (await ws.command("ping"))["type"] == "ok"
            speed = await ws.command("speed_control", multiplier=1.5)
            assert speed["type"] == "error"
            assert speed["code"] == ("not_on_track" if role == "member" else "forbidden"), (role, speed)
            for name in sorted(ORGANIZER_COMMANDS):
                reply = await ws.command(name, **commands[name])
                forbidden = reply["type"] == "error" and reply["code"] == "forbidden"
                assert forbidden == (role != "organizer"), (role, name, reply)
    for client in c.values():
        await client.aclose()


async def test_removal_link_reset_and_viewer_rotation_act_at_once(race_server: LiveServer, world: World) -> None:
    c = world.clients
    base = f"/api/races/{world.race_id}"
    async with (
        race_socket(race_server, world.race_id, cookie=cookie_of(c["member"])) as member_ws,
        race_socket(race_server, world.race_id, query=f"?viewer={world.viewer_token}") as viewer_ws,
    ):
        for ws in (member_ws, viewer_ws):
            assert (await ws.command("subscribe"))["type"] == "ok"
            await ws.wait_type("snapshot")
        # Reset link: the old link is dead, current racers keep access.
        new_code = (await c["organizer"].post(f"{base}/invitation/reset")).json()["code"]
        newcomer = {"email": "new@example.com", "password": PASSWORD}
        assert (await c["anonymous"].post(f"/api/join/{world.code}", json=newcomer)).status_code == 404
        assert (await c["member"].get(base)).status_code == 200
        assert (await member_ws.command("ping"))["type"] == "ok"
        assert (await c["anonymous"].post(f"/api/join/{new_code}", json=newcomer)).status_code == 201
        # Remove the member: HTTP refuses at once and the open websocket is closed.
        assert (await c["organizer"].delete(f"{base}/racers/{world.member_id}")).status_code == 200
        assert await member_ws.close_code() == auth.WS_FORBIDDEN
        assert (await c["member"].get(base)).status_code == 403
        assert (await c["member"].post(f"/api/join/{new_code}")).status_code == 403  # the link does not undo it
        # A new viewer token: the old one's socket closes and the old token stops working.
        assert (await c["organizer"].post(f"{base}/viewer-token")).status_code == 201
        assert await viewer_ws.close_code() == auth.WS_FORBIDDEN
        assert (await c["viewer"].get(base)).status_code == 401
    participants = (await c["organizer"].get(f"{base}/participants.csv")).text.splitlines()
    assert participants[0].startswith("user_id,alias,email")
    assert any("member@example.com" in line and line.split(",")[4] for line in participants[1:])
    for client in c.values():
        await client.aclose()
