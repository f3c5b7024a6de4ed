"""The workshop's server parts over real HTTP and websockets on real PostgreSQL: reward validation
with lines, the job feed (history, then live events from the bus), evaluation files refused before
they exist, the track outline, the workshop page shells, and a model kept while a race uses it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import websockets

from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.helpers import api_token, login, make_user
from tests.models.builders import tar_folder, write_trackside_folder
from tests.trainer.test_service import TINY


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, run_workers=False)  # queued jobs stay queued: the feed is driven by Stop


async def test_reward_validation_names_code_and_line(live_server: LiveServer, settings: Settings) -> None:
    await make_user(settings, "racer", "racer@example.com")
    async with login(live_server, "racer@example.com") as client:
        bad = await client.post(
            "/api/reward/validate", json={"reward_function": "import os\ndef reward_function(params):\n    return 1\n"}
        )
        assert bad.status_code == 422
        body = bad.json()
        assert body["ok"] is False and body["code"] == "IMPORT_ERROR" and "(line 1)" in body["error"]
        assert body["errors"][0]["line"] == 1
        syntax = await client.post("/api/reward/validate", json={"reward_function": "def reward_function(:\n"})
        assert syntax.status_code == 422 and syntax.json()["errors"][0]["code"] == "SYNTAX_ERROR"
        good = await client.post(
            "/api/reward/validate",
            json={"reward_function": TINY["reward_function"], "track_id": "reinvent_base", "direction": "ccw"},
        )
        assert good.status_code == 200 and good.json() == {"ok": True, "errors": []}
        missing = await client.post("/api/reward/validate", json={})
        assert missing.status_code == 422 and missing.json()["code"] == "invalid"
        direction = await client.post("/api/reward/validate", json={"reward_function": "x", "direction": "up"})
        assert direction.status_code == 422 and "direction" in direction.json()["error"]
    async with httpx.AsyncClient(base_url=live_server.url) as anonymous:
        assert (await anonymous.post("/api/reward/validate", json={"reward_function": "x"})).status_code == 401


async def test_job_feed_sends_history_then_live_events_to_the_owner_only(
    live_server: LiveServer, settings: Settings
) -> None:
    await make_user(settings, "racer", "alice@example.com")
    await make_user(settings, "racer", "bob@example.com")
    alice = await api_token(live_server, "alice@example.com")
    bob = await api_token(live_server, "bob@example.com")
    headers = {"Authorization": f"Bearer {alice}"}
    async with httpx.AsyncClient(base_url=live_server.url, headers=headers) as client:
        job = (await client.post("/api/jobs", json=TINY)).json()
        url = f"{live_server.ws_url}/ws/jobs/{job['id']}"
        async with websockets.connect(url, additional_headers=headers) as ws:
            history = json.loads(await ws.recv())
            assert history["type"] == "history" and history["job"]["status"] == "queued"
            assert [(e["type"], e["status"]) for e in history["events"]] == [("job.status", "queued")]
            assert (await client.post(f"/api/jobs/{job['id']}/stop")).status_code == 200
            live = json.loads(await ws.recv())
            assert live["type"] == "job.status" and live["status"] == "canceled"
            assert live["id"] > history["events"][-1]["id"]
        # Evaluation files exist only for finished evaluations.
        for path in ("video", "simtrace"):
            assert (await client.get(f"/api/jobs/{job['id']}/{path}")).status_code == 404
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {bob}"}) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_track_outline_and_workshop_shells(live_server: LiveServer, settings: Settings) -> None:
    await make_user(settings, "racer", "racer@example.com")
    async with login(live_server, "racer@example.com") as client:
        outline = await client.get("/api/tracks/reinvent_base/outline")
        assert outline.status_code == 200
        body = outline.json()
        assert 10 < len(body["centre"]) <= 2 * 120 and len(body["inner"]) > 10 and len(body["outer"]) > 10
        assert (await client.get("/api/tracks/no_such_track/outline")).status_code == 404
        for path in ("/models", "/models/import", "/models/new", "/models/4", "/jobs/7", "/account"):
            page = await client.get(path)
            assert page.status_code == 200 and '<script type="module" src="/static/js/app.js">' in page.text, path


async def test_a_model_entered_in_an_open_race_is_not_deleted(
    live_server: LiveServer, settings: Settings, tmp_path: Path
) -> None:
    await make_user(settings, "organizer", "org@example.com")
    await make_user(settings, "racer", "racer@example.com", alias="speedy")
    archive = tar_folder(write_trackside_folder(tmp_path / "m"), tmp_path / "m.tar.gz")
    async with login(live_server, "org@example.com") as org, login(live_server, "racer@example.com") as racer:
        race = (
            await org.post(
                "/api/races",
                json={
                    "name": "Open race",
                    "format": "classic",
                    "track_id": "reinvent_base",
                    "start": "2020-01-01T00:00:00+00:00",
                    "end": "2099-01-01T00:00:00+00:00",
                },
            )
        ).json()
        assert (await racer.post(f"/api/join/{race['invite_code']}")).status_code in (200, 201)
        imported = await racer.post(
            "/api/models/import?name=entered",
            content=archive.read_bytes(),
            headers={"Content-Type": "application/gzip"},
        )
        model_id = imported.json()["model"]["id"]
        entered = await racer.post(f"/api/races/{race['id']}/submissions", json={"model_id": model_id})
        assert entered.status_code in (200, 201, 202), entered.text
        refused = await racer.delete(f"/api/models/{model_id}")
        assert refused.status_code == 409 and refused.json()["code"] == "MODEL_IN_USE"
        assert "Open race" in refused.json()["error"]
        assert (await racer.get(f"/api/models/{model_id}")).status_code == 200
        assert (await org.post(f"/api/races/{race['id']}/close")).status_code == 200
        assert (await racer.delete(f"/api/models/{model_id}")).status_code == 200
