"""Threat: any local account on the race laptop connects to the embedded PostgreSQL as superuser
(trust authentication on a world-reachable socket) and runs programs through it (``COPY … FROM
PROGRAM``) with root's group 0. Only the server's own OS user may connect (peer authentication,
socket folder 0700), and the database's processes carry no root group."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from race_server.db.embedded import SERVICE_USER, SOCKET_NAME, EmbeddedPostgres, binaries_available

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the service-user rules apply when the server runs as root")

PROBE = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as error:
    print("refused", type(error).__name__)
else:
    print("connected")
"""


@pytest.fixture
def embedded() -> Iterator[EmbeddedPostgres]:
    assert binaries_available()
    # Not under pytest's tmp_path: every pytest session run as root resets /tmp/pytest-of-root to
    # 0700, which would cut the service user off from a cluster in it mid-test.
    root = Path(tempfile.mkdtemp(prefix="trackside-sec-"))
    server = EmbeddedPostgres(root / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _groups_of(pid: int) -> tuple[set[int], set[int]]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {int(g) for g in fields["Gid"].split()}, {int(g) for g in fields["Groups"].split()}


@pytest.mark.slow
def test_only_the_server_user_reaches_the_database_and_it_holds_no_root_group(embedded: EmbeddedPostgres) -> None:
    assert stat.S_IMODE(embedded.socket_dir.stat().st_mode) & 0o077 == 0
    # Another local account cannot reach the socket at all.
    probe = subprocess.run(
        ["/usr/bin/python3", "-c", PROBE,
         str(embedded.socket_dir / SOCKET_NAME)],
        capture_output=True, text=True, timeout=30, user="nobody", group="nogroup", extra_groups=[], cwd="/",
    )  # fmt: skip
    assert probe.stdout.strip().startswith("refused"), (probe.stdout, probe.stderr)

    async def as_server() -> str:
        conn = await asyncpg.connect(embedded.dsn)
        try:
            await conn.execute("CREATE TEMP TABLE seen (line text)")
            await conn.execute("COPY seen FROM PROGRAM 'id'")
            line = await conn.fetchval("SELECT line FROM seen")
            # A role other than the mapped one is refused even to the server's OS user.
            with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
                await asyncpg.connect(embedded.dsn.replace("postgres@", "trackside_other@"))
        finally:
            await conn.close()
        return str(line)

    identity = asyncio.run(as_server())
    service = pwd.getpwnam(SERVICE_USER)
    assert f"uid={service.pw_uid}(" in identity
    assert "0(root)" not in identity, identity
    postmaster = embedded._orphan_pid()  # the running postmaster of this data dir
    assert postmaster is not None
    gids, groups = _groups_of(postmaster)
    assert 0 not in gids and 0 not in groups, (gids, groups)
