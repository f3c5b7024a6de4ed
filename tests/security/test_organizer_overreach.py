"""Threat: on a server shared by several organizers, one organizer (or a leaked organizer token)
reads another organizer's races through a server viewer token, or exports, clones, car-bundles or
evaluates a racer's model and stops a racer's job. Least privilege: organizers are peers who own
their races, models, jobs and tokens; nothing of anyone else's exists for them (404 / 403)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import websockets

from race_server import auth
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.helpers import login, make_user
from tests.models.builders import tar_folder, write_trackside_folder
from tests.races_api.helpers import live_config


async def _viewer_socket_close_or_ok(server: LiveServer, race_id: int, token: str) -> int | str:
    async with websockets.connect(f"{server.ws_url}/ws/races/{race_id}?token={token}") as ws:
        try:
            await ws.send(json.dumps({"v": 1, "type": "ping", "req": 1}))
            return str(json.loads(await ws.recv())["type"])
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else -1


async def test_an_organizer_reaches_nothing_of_another_organizers_or_racers(
    server: LiveServer, settings: Settings, tmp_path: Path
) -> None:
    await make_user(settings, "organizer", "ann@example.com")
    await make_user(settings, "organizer", "mallory@example.com")
    await make_user(settings, "racer", "r@example.com", alias="racer-one")
    archive = tar_folder(write_trackside_folder(tmp_path / "m"), tmp_path / "m.tar.gz").read_bytes()
    async with (
        login(server, "ann@example.com") as ann,
        login(server, "mallory@example.com") as mallory,
        login(server, "r@example.com") as racer,
    ):
        race_id = (await ann.post("/api/races", json=live_config())).json()["id"]
        model = (await racer.post("/api/models/import?name=secret-sauce", content=archive)).json()["model"]
        racer_token = (await racer.post("/api/tokens", json={"name": "cli"})).json()
        # A viewer token watches its maker's races only.
        ann_viewer = (await ann.post("/api/tokens", json={"name": "screen", "kind": "viewer"})).json()["token"]
        own_viewer = (await mallory.post("/api/tokens", json={"name": "spy", "kind": "viewer"})).json()["token"]
        spy = httpx.AsyncClient(base_url=server.url, headers={"authorization": f"Bearer {own_viewer}"})
        screen = httpx.AsyncClient(base_url=server.url, headers={"authorization": f"Bearer {ann_viewer}"})
        async with spy, screen:
            assert (await spy.get(f"/api/races/{race_id}")).status_code == 403
            assert (await spy.get(f"/api/races/{race_id}/leaderboard")).status_code == 403
            assert (await screen.get(f"/api/races/{race_id}")).status_code == 200
        assert await _viewer_socket_close_or_ok(server, race_id, own_viewer) == auth.WS_FORBIDDEN
        assert await _viewer_socket_close_or_ok(server, race_id, ann_viewer) == "ok"
        assert (await mallory.get(f"/api/races/{race_id}")).status_code == 403
        # A racer's model and jobs do not exist for an organizer.
        for method, path in [
            ("GET", f"/api/models/{model['id']}"),
            ("GET", f"/api/models/{model['id']}/export"),
            ("GET", f"/api/models/{model['id']}/car-bundle"),
            ("POST", f"/api/models/{model['id']}/clone"),
            ("DELETE", f"/api/models/{model['id']}"),
        ]:
            response = await mallory.request(method, path, json={"name": "mine-now"} if method == "POST" else None)
            assert response.status_code == 404, (method, path, response.status_code)
        assert (await mallory.get("/api/models?all=1")).json()["models"] == []
        evaluation = {"kind": "evaluation", "name": "peek", "model_id": model["id"], "track_id": "reInvent2019_track"}
        assert (await mallory.post("/api/jobs", json=evaluation)).status_code in (404, 422)
        # Nor can an organizer revoke a racer's token (a denial of service on race day).
        assert (await mallory.delete(f"/api/tokens/{racer_token['id']}")).status_code == 404
        bearer = {"authorization": f"Bearer {racer_token['token']}"}
        assert (await racer.get("/api/auth/me", headers=bearer)).status_code == 200
