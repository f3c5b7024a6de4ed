"""The `trackside` command as a person with one laptop runs it: a real subprocess on a new data dir,
no account made first, and with --json exactly one JSON object on stdout whatever happens."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from race_server import auth
from race_server.cli_owner import LOCAL_OWNER_EMAIL
from race_server.db.embedded import EmbeddedPostgres
from race_server.settings import Settings
from tests.helpers import make_user
from tests.models.builders import write_trackside_folder


def trackside(data_dir: Path, *args: str, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "TRACKSIDE_SECRET_KEY")}
    env["TRACKSIDE_DATA_DIR"] = str(data_dir)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "race_server.cli", *args], env=env, capture_output=True, text=True, timeout=180
    )


def one_object(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """stdout holds exactly one JSON object with ok and errors."""
    lines = result.stdout.splitlines()
    assert len(lines) == 1, f"expected one line on stdout, got {result.stdout!r} (stderr {result.stderr!r})"
    body = json.loads(lines[0])
    assert isinstance(body, dict) and isinstance(body["ok"], bool) and isinstance(body["errors"], list)
    assert all({"code", "message"} <= set(error) for error in body["errors"])
    return body


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Outside pytest's base temp: a concurrent pytest session resets /tmp/pytest-of-<user> to 0700,
    # which locks the embedded PostgreSQL's service user out of a data dir below it.
    root = Path(tempfile.mkdtemp(prefix="trackside-cli-test-"))
    directory = root / "data"
    yield directory
    # A CLI run stops the embedded PostgreSQL it started; one a failed run left must not outlive the test.
    orphan = EmbeddedPostgres(directory)._orphan_pid()
    if orphan is not None:
        os.kill(orphan, signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)


def test_import_on_a_new_data_dir_needs_no_account(data_dir: Path, tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "my-model")
    imported = trackside(data_dir, "model", "import", str(folder), "--json")
    assert imported.returncode == 0, imported.stderr
    body = one_object(imported)
    assert body["ok"] is True and body["errors"] == [] and body["model"]["name"] == "my-model"
    again = trackside(data_dir, "model", "import", str(folder), "--name", "second", "--json")
    assert one_object(again)["model"]["owner_id"] == body["model"]["owner_id"], "one local owner, made once"
    listed = one_object(trackside(data_dir, "model", "list", "--json"))
    assert sorted(m["name"] for m in listed["models"]) == ["my-model", "second"]


@pytest.mark.parametrize(
    ("args", "code", "exit_code"),
    [
        (("model", "import", "--json"), "MISSING_PARAMETER", 2),
        (("model", "import", "/nonexistent", "--json"), "FILE_DOES_NOT_EXIST", 1),
        (("model", "import", "/nonexistent", "--bogus", "--json"), "NO_SUCH_OPTION", 2),
        (("model", "imprt", "x", "--json"), "USAGE_ERROR", 2),
        (("model", "export", "x", "--json"), "MISSING_PARAMETER", 2),
        (("evaluate", "/nonexistent", "--trials", "many", "--json"), "BAD_PARAMETER", 2),
        (("evaluate", "/nonexistent", "--json"), "INVALID_INPUT", 2),
        (("train", str(Path("/nonexistent") / "out"), "--metadata", "/nonexistent.json", "--json"), "INVALID_INPUT", 2),
    ],
)
def test_every_failure_is_one_json_object(data_dir: Path, args: tuple[str, ...], code: str, exit_code: int) -> None:
    result = trackside(data_dir, *args)
    body = one_object(result)
    assert body["ok"] is False and [e["code"] for e in body["errors"]] == [code]
    assert result.returncode == exit_code


def test_a_bad_setting_is_one_json_object(data_dir: Path) -> None:
    env_args = ("model", "list", "--json")
    env = {**os.environ, "TRACKSIDE_DATA_DIR": str(data_dir), "TRACKSIDE_PORT": "eighty"}
    result = subprocess.run(
        [sys.executable, "-m", "race_server.cli", *env_args], env=env, capture_output=True, text=True, timeout=60
    )
    body = one_object(result)
    assert result.returncode == 2 and body["errors"][0]["code"] == "CONFIGURATION_ERROR"
    assert "TRACKSIDE_PORT" in body["errors"][0]["message"]


def test_an_unreachable_database_is_one_json_object(data_dir: Path) -> None:
    result = trackside(data_dir, "model", "list", "--json", database_url="postgresql://postgres@127.0.0.1:1/none")
    body = one_object(result)
    assert result.returncode == 1 and [e["code"] for e in body["errors"]] == ["DATABASE_ERROR"]


def test_an_unwritable_export_target_is_one_json_object(settings: Settings, tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    url = settings.database_url
    assert one_object(trackside(settings.data_dir, "model", "import", str(folder), "--json", database_url=url))["ok"]
    target = tmp_path / "missing-folder" / "out.tar.gz"
    result = trackside(settings.data_dir, "model", "export", "m", "-o", str(target), "--json", database_url=url)
    body = one_object(result)
    assert result.returncode == 1 and body["errors"][0]["code"] == "IO_ERROR"
    assert body["errors"][0]["file"] == str(target)


def test_without_json_errors_are_text_on_stderr(data_dir: Path) -> None:
    result = trackside(data_dir, "model", "import", "/nonexistent")
    assert result.returncode == 1 and result.stdout == ""
    assert "/nonexistent does not exist" in result.stderr


async def _migrated(settings: Settings) -> None:
    from race_server.db.migrate import migrate

    conn = await asyncpg.connect(settings.database_url)
    try:
        await migrate(conn)
    finally:
        await conn.close()


async def _organizers(settings: Settings) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return list(await conn.fetch("SELECT id, email, password_hash FROM users WHERE role = 'organizer'"))
    finally:
        await conn.close()


async def test_the_only_organizer_owns_imports_and_several_need_owner(settings: Settings, tmp_path: Path) -> None:
    assert settings.database_url is not None
    folder = write_trackside_folder(tmp_path / "shared")
    await _migrated(settings)
    organizer = await make_user(settings, "organizer", "org@example.com")
    url = settings.database_url
    first = one_object(trackside(settings.data_dir, "model", "import", str(folder), "--json", database_url=url))
    assert first["model"]["owner_id"] == organizer
    await make_user(settings, "organizer", "other@example.com")
    ambiguous = trackside(
        settings.data_dir, "model", "import", str(folder), "--name", "b", "--json", database_url=settings.database_url
    )
    assert ambiguous.returncode == 2 and one_object(ambiguous)["errors"][0]["code"] == "OWNER_REQUIRED"
    named = trackside(
        settings.data_dir, "model", "import", str(folder), "--name", "b", "--owner", "other@example.com", "--json",
        database_url=settings.database_url,
    )  # fmt: skip
    assert one_object(named)["ok"] is True
    unknown = trackside(settings.data_dir, "model", "list", "--owner", "nobody@example.com", "--json", database_url=url)
    assert unknown.returncode == 2 and one_object(unknown)["errors"][0]["code"] == "UNKNOWN_OWNER"
    assert LOCAL_OWNER_EMAIL not in [row["email"] for row in await _organizers(settings)]


async def test_the_local_owner_cannot_sign_in(settings: Settings, tmp_path: Path) -> None:
    assert settings.database_url is not None
    folder = write_trackside_folder(tmp_path / "solo")
    result = trackside(settings.data_dir, "model", "import", str(folder), "--json", database_url=settings.database_url)
    assert one_object(result)["ok"] is True
    (local,) = await _organizers(settings)
    assert local["email"] == LOCAL_OWNER_EMAIL
    for guess in ("", "!", local["password_hash"], "correct horse battery"):
        assert not await auth.verify_password(local["password_hash"], guess)
