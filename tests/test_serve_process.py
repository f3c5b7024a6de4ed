"""`trackside serve` as a real process on the embedded PostgreSQL: start, stop, kill -9, restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from race_server.db.embedded import EmbeddedPostgres

STARTUP_S = 60
PASSWORD = "organizer password 1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(TRACKSIDE_DATA_DIR=str(data_dir), TRACKSIDE_PORT=str(port), TRACKSIDE_LOG_FORMAT="json")
    return env


def cli(data_dir: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "race_server.cli", *args],
        env=environment(data_dir, port),
        capture_output=True,
        text=True,
        timeout=120,
    )


class Serve:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.log = (data_dir.parent / f"serve-{self.port}.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "race_server.cli", "serve"],
            env=environment(data_dir, self.port),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_healthy(self) -> dict[str, object]:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}: {self.output()}")
            try:
                response = httpx.get(f"{self.url}/healthz", timeout=2)
            except httpx.TransportError:
                time.sleep(0.1)  # the port is not bound yet: nothing to await across processes
                continue
            assert response.status_code == 200, response.text
            return dict(response.json())
        raise AssertionError(f"no healthy answer within {STARTUP_S} s: {self.output()}")

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text()

    def stop(self, sig: int) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self.log.close()
        return code


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "data"
    yield directory
    # Whatever a failed test left running on this data dir must not outlive it.
    orphan = EmbeddedPostgres(directory)._orphan_pid()
    if orphan is not None:
        os.kill(orphan, signal.SIGKILL)


def postmaster_pid(data_dir: Path) -> int | None:
    return EmbeddedPostgres(data_dir)._orphan_pid()


def login_ok(url: str) -> bool:
    response = httpx.post(f"{url}/api/auth/login", json={"email": "boss@example.com", "password": PASSWORD})
    return response.status_code == 200


def test_serve_on_embedded_postgres_survives_stop_and_kill(data_dir: Path) -> None:
    first = Serve(data_dir)
    health = first.wait_healthy()
    assert health["database"] == {"ok": True, "embedded": True}
    assert health["bus"]["kind"] == "memory"  # type: ignore[index]
    created = cli(
        data_dir, first.port, "admin", "create-organizer", "--email", "boss@example.com", "--password", PASSWORD
    )
    assert created.returncode == 0, created.stderr
    assert login_ok(first.url)
    assert first.stop(signal.SIGINT) == 0
    assert postmaster_pid(data_dir) is None, "Ctrl-C must stop the embedded PostgreSQL too"
    assert not (data_dir / "postgres" / "postmaster.pid").exists()

    second = Serve(data_dir)
    second.wait_healthy()
    assert login_ok(second.url), "data must survive a clean restart"
    orphan = postmaster_pid(data_dir)
    assert orphan is not None
    second.process.kill()
    second.process.wait(timeout=30)
    second.log.close()
    assert postmaster_pid(data_dir) == orphan, "kill -9 leaves the postmaster behind: the case to recover from"

    third = Serve(data_dir)
    third.wait_healthy()
    assert login_ok(third.url), "data must survive kill -9"
    status = cli(data_dir, third.port, "db", "status")
    assert status.returncode == 0 and "applied  0001_identity.sql" in status.stdout
    assert third.stop(signal.SIGTERM) == 0
    assert postmaster_pid(data_dir) is None


def test_second_server_on_the_same_data_dir_is_refused(data_dir: Path) -> None:
    first = Serve(data_dir)
    first.wait_healthy()
    second = Serve(data_dir)
    try:
        assert second.process.wait(timeout=60) != 0
        second.log.close()
        assert "another Trackside server is using the data directory" in second.output()
        first.wait_healthy()
    finally:
        assert first.stop(signal.SIGTERM) == 0
