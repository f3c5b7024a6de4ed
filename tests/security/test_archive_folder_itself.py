"""Threat model check on the archive guard: it must refuse escapes without refusing ordinary archives.
``tar -czf m.tar.gz -C folder .`` (the way most people pack a folder) starts with the entry ``./``,
the folder itself; it must import, while ``..`` and absolute names stay refused."""

from __future__ import annotations

import asyncio
import tarfile
from pathlib import Path

from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.helpers import login, make_user
from tests.models.builders import tar_bytes, write_trackside_folder


async def test_tar_of_dot_imports_and_escapes_stay_refused(
    server: LiveServer, settings: Settings, tmp_path: Path
) -> None:
    folder = write_trackside_folder(tmp_path / "folder")
    archive = tmp_path / "m.tar.gz"
    tar = await asyncio.create_subprocess_exec("tar", "-czf", str(archive), "-C", str(folder), ".")
    assert await tar.wait() == 0
    with tarfile.open(archive) as packed:
        assert packed.getnames()[0] in (".", "./")
    await make_user(settings, "racer", "r@example.com", alias="racer-one")
    async with login(server, "r@example.com") as racer:
        created = await racer.post("/api/models/import?name=dotted", content=archive.read_bytes())
        assert created.status_code == 201, created.text
        for evil in ("..", "./../x", "/"):
            info = tarfile.TarInfo(evil)
            info.type = tarfile.DIRTYPE
            refused = await racer.post("/api/models/import?name=evil", content=tar_bytes([(info, None)]))
            assert refused.status_code == 422, (evil, refused.text)
            assert refused.json()["errors"][0]["code"] == "UNSAFE_ARCHIVE_ENTRY"
