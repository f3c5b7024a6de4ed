"""Threat: a signed-in racer fills the server's disk with parallel 1 GB uploads (each is spooled to
staging, then unpacked) or with model after model. One upload per user runs at a time, and each
user's stored models have a quota that also caps how much of an upload's body is accepted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.helpers import login, make_user
from tests.models.builders import tar_folder, write_trackside_folder

CHUNK = b"\0" * (256 * 1024)


async def _receiving(client: httpx.AsyncClient, upload_id: str) -> None:
    """Until the server reports bytes received for this upload (bounded)."""
    for _ in range(500):
        progress = await client.get(f"/api/models/uploads/{upload_id}")
        if progress.status_code == 200 and progress.json()["received"] > 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the first upload never started")


async def test_one_upload_at_a_time_per_user(server: LiveServer, settings: Settings) -> None:
    await make_user(settings, "racer", "r@example.com", alias="racer-one")
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield CHUNK
        await release.wait()
        yield CHUNK

    async with login(server, "r@example.com") as racer:
        first = asyncio.create_task(
            racer.post("/api/models/import?name=big", content=slow_body(), headers={"x-upload-id": "first"})
        )
        await _receiving(racer, "first")
        others = await asyncio.gather(
            *(racer.post(f"/api/models/import?name=big{n}", content=CHUNK * 4) for n in range(2))
        )
        for refused in others:
            assert refused.status_code == 429, refused.text
            assert refused.json()["code"] == "upload_in_progress"
        release.set()
        finished = await first
        assert finished.status_code == 422  # zeros are no archive; the point is it ran alone
        # The slot is free again once the first upload is done.
        again = await racer.post("/api/models/import?name=again", content=CHUNK)
        assert again.status_code == 422


async def test_quota_on_stored_models_and_on_the_body(server: LiveServer, settings: Settings, tmp_path: Path) -> None:
    from race_server.api.upload_gate import UploadGate

    await make_user(settings, "racer", "r@example.com", alias="racer-one")
    archive = tar_folder(write_trackside_folder(tmp_path / "m"), tmp_path / "m.tar.gz").read_bytes()
    async with login(server, "r@example.com") as racer:
        first = await racer.post("/api/models/import?name=first", content=archive)
        assert first.status_code == 201, first.text
        stored = first.json()["model"]["size_bytes"]
        server.app.state.upload_gate = UploadGate(quota_bytes=stored + len(archive) // 2)
        # Under the quota but the body is bigger than what is left: cut off while it streams.
        cut = await racer.post("/api/models/import?name=second", content=archive)
        assert cut.status_code == 413 and cut.json()["code"] == "quota_exceeded", cut.text
        server.app.state.upload_gate = UploadGate(quota_bytes=stored)
        full = await racer.post("/api/models/import?name=third", content=archive)
        assert full.status_code == 413 and full.json()["code"] == "quota_exceeded"
        assert len((await racer.get("/api/models")).json()["models"]) == 1
    staging = list((settings.data_dir).rglob("upload.body"))
    assert staging == [], "a refused upload left its body in staging"
