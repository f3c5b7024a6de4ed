"""`trackside model import|list|export|clone|delete` on this machine's store."""

from __future__ import annotations

import asyncio
import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from race_server.models.cli import model_app
from race_server.settings import Settings
from tests.helpers import make_user
from tests.models.builders import write_trackside_folder


@pytest.fixture
async def local_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    assert settings.database_url is not None
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TRACKSIDE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TRACKSIDE_SECRET_KEY", settings.secret_key)
    import asyncpg

    from race_server.db.migrate import migrate

    conn = await asyncpg.connect(settings.database_url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    await make_user(settings, "organizer", "org@example.com")
    return settings


async def cli(*argv: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, model_app, list(argv))


async def test_import_json_then_list_export_clone_delete(local_env: Settings, tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "my-folder")
    imported = await cli("import", str(folder), "--name", "cli-model", "--json")
    assert imported.exit_code == 0, imported.output
    body = json.loads(imported.stdout)
    assert body["ok"] is True and body["errors"] == [] and body["model"]["name"] == "cli-model"
    listed = json.loads((await cli("list", "--json")).stdout)["models"]
    assert [m["name"] for m in listed] == ["cli-model"]
    out = tmp_path / "out.tar.gz"
    assert (await cli("export", "cli-model", "--out", str(out), "--checkpoint", "best")).exit_code == 0
    with tarfile.open(out) as archive:
        assert "model/3_Step-300.ckpt.pt" in archive.getnames()
    car = tmp_path / "car.tar.gz"
    assert (await cli("export", "cli-model", "--out", str(car), "--car")).exit_code == 0
    with tarfile.open(car) as archive:
        assert archive.getnames()[:2] == ["model_metadata.json", "model.onnx"]
    assert (await cli("clone", "cli-model", "cli-model-2")).exit_code == 0
    assert (await cli("delete", "cli-model", "-f")).exit_code == 0
    assert [m["name"] for m in json.loads((await cli("list", "--json")).stdout)["models"]] == ["cli-model-2"]


async def test_import_json_reports_every_error(local_env: Settings, tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "broken")
    (folder / "reward_function.py").unlink()
    (folder / "model" / ".coach_checkpoint").unlink()
    (folder / "model" / "deepracer_checkpoints.json").unlink()
    result = await cli("import", str(folder), "--json")
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["ok"] is False and body["model"] is None
    assert sorted(e["code"] for e in body["errors"]) == ["COACH_CHECKPOINT_DOES_NOT_EXIST", "FILE_DOES_NOT_EXIST"]
    assert all(set(e) == {"code", "message", "file", "field"} for e in body["errors"])
