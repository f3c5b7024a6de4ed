"""A LIVE race with real models from the store: train-shaped folders imported over HTTP by their
racers, submitted, queued and driven by the ONNX driver on the real RaceHost.

The models have random weights (the trainer's networks, a Trackside checkpoint and its ONNX
export), so nobody is expected to finish a lap; what matters is that the stored model.onnx is the
one the host loads and drives for the whole slot, and that a model the host could not load is a
red row before anyone launches it. The simulator runs as fast as it can and the slot is short.
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from race_server.api.race_runtime import RaceOptions
from race_server.models.car import onnx_writer
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.models.builders import tar_folder, write_trackside_folder
from tests.races_api.helpers import cookie_of, live_config, login, make_user, race_socket

SLOT_S = 5.0
CHECKPOINT = "3_Step-300.ckpt"
TOP_SPEED = 1.0  # m/s: the fastest action of the default action space these models use
PROGRESS_REWARD = "def reward_function(params):\n    return params['progress'] / 100.0\n"


@pytest.fixture
async def fast_server(settings: Settings) -> AsyncIterator[LiveServer]:
    server = LiveServer(replace(settings, run_workers=False), bus_prefix=f"test-{uuid.uuid4().hex[:8]}:")
    server.app.state.race_options = RaceOptions(realtime=False, countdown_s=1, time_per_racer_s=SLOT_S)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def import_model(client: httpx.AsyncClient, folder: Path, name: str) -> dict[str, Any]:
    archive = tar_folder(folder, folder.parent / f"{name}.tar.gz")
    response = await client.post(f"/api/models/import?name={name}", content=archive.read_bytes())
    assert response.status_code == 201, response.text
    model: dict[str, Any] = response.json()["model"]
    return model


async def test_a_racer_races_a_real_model_from_the_store_and_an_unloadable_one_is_a_red_row(
    fast_server: LiveServer, settings: Settings, tmp_path: Path
) -> None:
    server = fast_server
    await make_user(settings, "organizer", "org@example.com")
    ann_id = await make_user(settings, "racer", "ann@example.com", alias="ann")
    cy_id = await make_user(settings, "racer", "cy@example.com", alias="cyd")
    organizer = await login(server, "org@example.com")
    ann = await login(server, "ann@example.com")
    cy = await login(server, "cy@example.com")
    try:
        await race_a_stored_model(server, settings, tmp_path, organizer, ann, cy, ann_id, cy_id)
    finally:
        for client in (organizer, ann, cy):
            await client.aclose()


async def race_a_stored_model(
    server: LiveServer,
    settings: Settings,
    tmp_path: Path,
    organizer: httpx.AsyncClient,
    ann: httpx.AsyncClient,
    cy: httpx.AsyncClient,
    ann_id: int,
    cy_id: int,
) -> None:
    created = await organizer.post("/api/races", json=live_config())
    assert created.status_code == 201, created.text
    race_id, code = created.json()["id"], created.json()["invite_code"]
    for racer in (ann, cy):
        assert (await racer.post(f"/api/join/{code}")).status_code == 200

    # Ann's folder has the ONNX export of its checkpoint; Cy's has only the checkpoint.
    ann_folder = write_trackside_folder(tmp_path / "ann", checkpoints=(CHECKPOINT,), seed=1)
    onnx_writer(ann_folder, CHECKPOINT, ann_folder / "model.onnx")
    (ann_folder / "reward_function.py").write_text(PROGRESS_REWARD)
    ann_model = await import_model(ann, ann_folder, "ann-racer")
    cy_model = await import_model(cy, write_trackside_folder(tmp_path / "cy", seed=2), "cy-racer")
    assert ann_model["owner_id"] == ann_id and cy_model["owner_id"] == cy_id

    not_hers = await ann.post(f"/api/races/{race_id}/submissions", json={"model_id": cy_model["id"]})
    assert not_hers.status_code == 404
    cy_sub = await cy.post(f"/api/races/{race_id}/submissions", json={"model_id": cy_model["id"]})
    ann_sub = await ann.post(f"/api/races/{race_id}/submissions", json={"model_id": ann_model["id"]})
    assert ann_sub.status_code == cy_sub.status_code == 201, (ann_sub.text, cy_sub.text)
    assert ann_sub.json()["loadable"] is True and ann_sub.json()["driver"]["kind"] == "onnx"
    assert cy_sub.json()["loadable"] is False and "model.onnx" in cy_sub.json()["error"]

    async with (
        race_socket(server, race_id, cookie=cookie_of(organizer)) as org_ws,
        race_socket(server, race_id, cookie=cookie_of(ann)) as ann_ws,
    ):
        for ws in (org_ws, ann_ws):
            assert (await ws.command("subscribe"))["type"] == "ok"
            await ws.wait_type("snapshot")
        reply = await org_ws.command("launch_simulator")
        assert reply["type"] == "ok", (reply.get("code"), reply.get("message"))
        await org_ws.wait_type("simulator", status="running", timeout=90)

        assert (await org_ws.command("set_entries_open", open=False))["type"] == "ok"
        queue = await org_ws.wait_type("queue")
        assert [e["racer_id"] for e in queue["entries"]] == [cy_id, ann_id]
        entries = {e["racer_id"]: e for e in queue["entries"]}
        assert entries[ann_id]["model_id"] == ann_sub.json()["id"] and not entries[ann_id]["red"]
        assert entries[cy_id]["red"] and "model.onnx" in entries[cy_id]["error"]
        refused = await org_ws.command("launch_racer", racer_id=cy_id)
        assert refused["type"] == "error" and refused["code"] == "red_row", refused
        assert (await org_ws.command("begin_queue_edit"))["type"] == "ok"
        saved = await org_ws.command("save_queue", order=[ann_id], version=queue["version"])
        assert saved["type"] == "ok", saved

        assert (await org_ws.command("launch_racer", racer_id=ann_id))["type"] == "ok"
        launched = await ann_ws.wait_type("run_launched", racer_id=ann_id)
        assert launched["model_id"] == ann_sub.json()["id"]
        await ann_ws.wait_type("run_started", racer_id=ann_id, timeout=60)
        await ann_ws.wait_type("checkered", racer_id=ann_id, timeout=90)
        await org_ws.wait_type("replay_ended", run_id=launched["run_id"], timeout=60)

    assert not [m for m in org_ws.seen if m["type"] == "run_failed"], "the stored model loaded and ran"
    telemetry = [m for m in ann_ws.seen if m["type"] == "telemetry" and m["run_id"] == launched["run_id"]]
    assert len(telemetry) >= SLOT_S * 15 * 0.5, len(telemetry)
    assert max(m["t"] for m in telemetry) >= SLOT_S - 0.5
    # The car moved at the model's speeds (the discrete actions go up to 1 m/s), not a house driver's.
    assert 0.0 < max(m["speed"] for m in telemetry) <= TOP_SPEED * 1.2  # physics overshoots a little

    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url)
    try:
        run = await conn.fetchrow("SELECT status, end_reason, submission_id FROM race_runs WHERE id = $1",
                                  launched["run_id"])  # fmt: skip
    finally:
        await conn.close()
    assert run is not None and dict(run) == {
        "status": "completed",
        "end_reason": "time_up",
        "submission_id": ann_sub.json()["id"],
    }

    # The run's simtrace carries the model's own reward function's value, step by step.
    trace = await run_file(ann, f"/api/races/{race_id}/runs/{launched['run_id']}/simtrace.csv")
    rows = list(csv.DictReader(io.StringIO(trace.text)))
    assert len(rows) >= SLOT_S * 15 * 0.5
    for row in rows:
        expected = float(row["progress"]) / 100.0
        # a paused row is either the step that went off (judged) or a held tick (no step: 0)
        allowed = (expected, 0.0) if row["episode_status"] == "pause" else (expected,)
        assert any(float(row["reward"]) == pytest.approx(value, abs=1e-9) for value in allowed), row
    assert any(float(row["reward"]) > 0.0 for row in rows)
    metrics = (await run_file(ann, f"/api/races/{race_id}/runs/{launched['run_id']}/metrics.json")).json()
    assert metrics["reward"] == "scored by the model's reward_function.py"


async def run_file(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """A run's logs are written (and its reward scored) after the run: poll, bounded by a deadline."""
    async with asyncio.timeout(60):
        while True:
            response = await client.get(url)
            if response.status_code != 404:
                assert response.status_code == 200, response.text
                return response
            await asyncio.sleep(0.2)
