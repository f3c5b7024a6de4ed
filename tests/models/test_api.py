"""The model store over real HTTP: archive and folder uploads, progress, listing, export, clone,
delete, car bundle, and a server that survives fuzzed uploads."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from race_server.models.car import load_policy
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.helpers import login, make_user
from tests.models.builders import tar_folder, write_trackside_folder
from tests.models.test_hostile_archives import hostile_base, mutate, small_folder


@pytest.fixture
async def racer(server: LiveServer, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    await make_user(settings, "racer", "racer@example.com", alias="racer-one")
    async with login(server, "racer@example.com") as client:
        yield client


async def test_archive_import_list_export_delete(racer: httpx.AsyncClient, tmp_path: Path, settings: Settings) -> None:
    archive = tar_folder(write_trackside_folder(tmp_path / "m"), tmp_path / "m.tar.gz")
    upload_id = uuid.uuid4().hex
    created = await racer.post(
        "/api/models/import?name=web-model", content=archive.read_bytes(), headers={"x-upload-id": upload_id}
    )
    assert created.status_code == 201, created.text
    model = created.json()["model"]
    progress = (await racer.get(f"/api/models/uploads/{upload_id}")).json()
    assert progress["phase"] == "done" and progress["received"] == progress["expected"] == archive.stat().st_size
    listed = (await racer.get("/api/models")).json()["models"]
    assert [m["name"] for m in listed] == ["web-model"] and listed[0]["status"] == "ready"
    detail = (await racer.get(f"/api/models/{model['id']}")).json()
    assert "model/3_Step-300.ckpt.pt" in {f["path"] for f in detail["files"]}
    exported = await racer.get(f"/api/models/{model['id']}/export?checkpoint=best")
    assert exported.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(exported.content)) as tar:
        assert "model/deepracer_checkpoints.json" in tar.getnames()
    assert (await racer.delete(f"/api/models/{model['id']}")).status_code == 200
    assert (await racer.get("/api/models")).json()["models"] == []
    assert list((settings.data_dir / "staging").iterdir()) == []


async def test_browser_folder_upload_is_multipart(racer: httpx.AsyncClient, tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "picked-folder")
    files = [
        ("files", (f"picked-folder/{p.relative_to(folder).as_posix()}", p.read_bytes(), "application/octet-stream"))
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]
    created = await racer.post("/api/models/import", data={"name": "folder-upload", "description": "hi"}, files=files)
    assert created.status_code == 201, created.text
    assert created.json()["model"]["description"] == "hi"


async def test_folder_upload_with_traversal_is_refused(racer: httpx.AsyncClient, settings: Settings) -> None:
    files = [("files", ("../../escape.txt", b"x", "text/plain"))]
    refused = await racer.post("/api/models/import", data={"name": "evil"}, files=files)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "UNSAFE_ARCHIVE_ENTRY"
    assert not (settings.data_dir / "escape.txt").exists() and not (settings.data_dir.parent / "escape.txt").exists()


async def test_broken_folder_reports_every_problem(racer: httpx.AsyncClient, tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    (folder / "reward_function.py").unlink()
    (folder / "model" / ".coach_checkpoint").unlink()
    (folder / "model" / "deepracer_checkpoints.json").unlink()
    refused = await racer.post(
        "/api/models/import?name=broken", content=tar_folder(folder, tmp_path / "b.tgz").read_bytes()
    )
    assert refused.status_code == 422
    body = refused.json()
    assert body["ok"] is False and body["model"] is None
    assert sorted(e["code"] for e in body["errors"]) == ["COACH_CHECKPOINT_DOES_NOT_EXIST", "FILE_DOES_NOT_EXIST"]
    assert all(set(e) >= {"code", "message", "file", "field"} for e in body["errors"])


async def test_validate_is_a_dry_run(racer: httpx.AsyncClient, tmp_path: Path) -> None:
    archive = tar_folder(write_trackside_folder(tmp_path / "m"), tmp_path / "m.tar.gz")
    checked = await racer.post("/api/models/validate", content=archive.read_bytes())
    assert checked.status_code == 200 and checked.json()["ok"] is True
    assert (await racer.get("/api/models")).json()["models"] == []


async def test_clone_and_car_bundle(racer: httpx.AsyncClient, tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    model = (
        await racer.post(
            "/api/models/import?name=car-model", content=tar_folder(folder, tmp_path / "m.tgz").read_bytes()
        )
    ).json()["model"]
    cloned = await racer.post(f"/api/models/{model['id']}/clone", json={"name": "car-model-2"})
    assert cloned.status_code == 201 and cloned.json()["model"]["parent_id"] == model["id"]
    bundle = await racer.get(f"/api/models/{model['id']}/car-bundle")
    assert bundle.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(bundle.content)) as tar:
        assert tar.getnames()[:2] == ["model_metadata.json", "model.onnx"]
        onnx_bytes = tar.extractfile("model.onnx").read()  # type: ignore[union-attr]
        assert json.loads(tar.extractfile("model_metadata.json").read())["version"] == "5"  # type: ignore[union-attr]
    images = np.random.default_rng(1).integers(0, 256, size=(8, 120, 160, 1)).astype(np.float32)
    session = ort.InferenceSession(onnx_bytes)
    probs = session.run(None, {"FRONT_FACING_CAMERA": images})[0]
    net, _ = load_policy(folder, "3_Step-300.ckpt")
    import torch

    with torch.no_grad():
        expected = net.policy_output({"FRONT_FACING_CAMERA": torch.as_tensor(images.astype(np.uint8))}).argmax(-1)
    assert probs.argmax(-1).tolist() == expected.tolist()


async def test_other_racers_models_are_invisible(
    server: LiveServer, racer: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    archive = tar_folder(write_trackside_folder(tmp_path / "m"), tmp_path / "m.tgz").read_bytes()
    model = (await racer.post("/api/models/import?name=mine", content=archive)).json()["model"]
    await make_user(settings, "racer", "other@example.com", alias="other-one")
    async with login(server, "other@example.com") as other:
        assert (await other.get(f"/api/models/{model['id']}")).status_code == 404
        assert (await other.delete(f"/api/models/{model['id']}")).status_code == 404
        assert (await other.get("/api/models")).json()["models"] == []


async def test_server_survives_fuzzed_uploads(racer: httpx.AsyncClient, tmp_path: Path, settings: Settings) -> None:
    rng = np.random.default_rng(99)
    folder = small_folder(tmp_path / "m")
    bases = [tar_folder(folder, tmp_path / "m.tgz").read_bytes(), hostile_base(folder)]
    statuses = set()
    for i in range(40):
        response = await racer.post(f"/api/models/import?name=fuzz-{i}", content=mutate(bases[i % 2], rng))
        statuses.add(response.status_code)
        assert response.status_code in (201, 422), response.text
    assert (await racer.get("/api/models")).status_code == 200
    assert list((settings.data_dir / "staging").iterdir()) == []
    assert not (settings.data_dir.parent / "evil").exists()
    assert 422 in statuses
