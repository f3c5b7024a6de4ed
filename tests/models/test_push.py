"""`trackside model push` against a live server, switch by switch (DRfC's dr-upload-model)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from race_server.models.cli import model_app
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.helpers import api_token, make_user
from tests.models.builders import write_trackside_folder


@pytest.fixture
async def token(server: LiveServer, settings: Settings) -> str:
    await make_user(settings, "racer", "racer@example.com", alias="racer-one")
    return await api_token(server, "racer@example.com")


@pytest.fixture
def drfc_folder(tmp_path: Path) -> Path:
    """DRfC's local layout: model_metadata.json inside model/, hyperparameters under ip/."""
    folder = write_trackside_folder(
        tmp_path / "rl-deepracer-sagemaker", checkpoints=("4_Step-40.ckpt", "9_Step-90.ckpt")
    )
    (folder / "model_metadata.json").rename(folder / "model" / "model_metadata.json")
    (folder / "ip").mkdir()
    (folder / "hyperparameters.json").rename(folder / "ip" / "hyperparameters.json")
    return folder


def tree(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in folder.rglob("*"))


def blob_files(settings: Settings) -> list[Path]:
    blobs = settings.data_dir / "blobs"
    return [p for p in blobs.rglob("*") if p.is_file()] if blobs.exists() else []


async def push(server: LiveServer, token: str, folder: Path, *args: str, stdin: str | None = None) -> Result:
    argv = ["push", str(folder), "--server", server.url, "--token", token, *args]
    # the server shares this event loop: the blocking CLI runs in a thread
    return await asyncio.to_thread(CliRunner().invoke, model_app, argv, input=stdin)


async def models(server: LiveServer, token: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=server.url, headers={"authorization": f"Bearer {token}"}) as http:
        return list((await http.get("/api/models")).json()["models"])


async def test_push_uploads_last_checkpoint_under_the_folder_name(
    server: LiveServer, token: str, drfc_folder: Path
) -> None:
    result = await push(server, token, drfc_folder, "-f")
    assert result.exit_code == 0, result.output
    [model] = await models(server, token)
    assert model["name"] == "rl-deepracer-sagemaker"
    assert model["checkpoints"]["last"]["name"] == "9_Step-90.ckpt"  # type: ignore[index]
    assert model["checkpoints"]["best"]["name"] == "9_Step-90.ckpt"  # type: ignore[index]


async def test_b_uploads_the_best_checkpoint(server: LiveServer, token: str, drfc_folder: Path) -> None:
    assert (await push(server, token, drfc_folder, "-f", "-b")).exit_code == 0
    [model] = await models(server, token)
    assert model["checkpoints"]["last"]["name"] == "4_Step-40.ckpt"  # type: ignore[index]


@pytest.mark.parametrize(
    ("switches", "name"),
    [
        (["-p", "league"], "league-rl-deepracer-sagemaker"),
        (["-p", "league", "-i"], "league"),
        (["-I", "Named-1"], "Named-1"),
    ],
)
async def test_name_switches(server: LiveServer, token: str, drfc_folder: Path, switches: list[str], name: str) -> None:
    result = await push(server, token, drfc_folder, "-f", *switches)
    assert result.exit_code == 0, result.output
    assert [m["name"] for m in await models(server, token)] == [name]


async def test_i_without_prefix_is_refused(server: LiveServer, token: str, drfc_folder: Path) -> None:
    result = await push(server, token, drfc_folder, "-f", "-i")
    assert result.exit_code == 2 and await models(server, token) == []


async def test_dry_run_reports_and_writes_nothing(
    server: LiveServer, token: str, drfc_folder: Path, settings: Settings
) -> None:
    before = tree(drfc_folder)
    result = await push(server, token, drfc_folder, "-d")
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output and "model/9_Step-90.ckpt.pt" in result.output
    assert "model/4_Step-40.ckpt.pt" not in result.output
    assert await models(server, token) == []
    assert blob_files(settings) == []
    assert tree(drfc_folder) == before


async def test_existing_target_needs_w_and_w_replaces_it(server: LiveServer, token: str, drfc_folder: Path) -> None:
    assert (await push(server, token, drfc_folder, "-f", "-I", "target")).exit_code == 0
    [first] = await models(server, token)
    refused = await push(server, token, drfc_folder, "-f", "-I", "target")
    assert refused.exit_code == 1 and "use -w" in refused.output
    assert [m["id"] for m in await models(server, token)] == [first["id"]]
    wiped = await push(server, token, drfc_folder, "-f", "-w", "-b", "-I", "target")
    assert wiped.exit_code == 0, wiped.output
    [second] = await models(server, token)
    assert second["id"] != first["id"] and second["checkpoints"]["last"]["name"] == "4_Step-40.ckpt"  # type: ignore[index]


async def test_without_f_the_user_is_asked(server: LiveServer, token: str, drfc_folder: Path) -> None:
    declined = await push(server, token, drfc_folder, stdin="n\n")
    assert declined.exit_code == 1 and "proceed" in declined.output and await models(server, token) == []
    accepted = await push(server, token, drfc_folder, stdin="y\n")
    assert accepted.exit_code == 0 and len(await models(server, token)) == 1


async def test_bad_token_and_broken_folder(server: LiveServer, token: str, drfc_folder: Path) -> None:
    assert (await push(server, "tsk_wrong", drfc_folder, "-f")).exit_code == 1
    (drfc_folder / "reward_function.py").unlink()
    broken = await push(server, token, drfc_folder, "-f")
    assert broken.exit_code == 1 and "FILE_DOES_NOT_EXIST" in broken.output
    assert json.dumps(await models(server, token)) == "[]"
