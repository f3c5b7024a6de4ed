"""kill -9 a real `trackside serve` mid-run, start it again: race, queue and laps come back, the
interrupted run is marked interrupted and the racer can be relaunched."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from race_server.settings import Settings
from tests.races_api.helpers import PASSWORD, RaceSocket, live_config, make_user

STARTUP_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, settings: Settings, log: Path, *, workers: int = 0) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env.update(
            DATABASE_URL=str(settings.database_url), TRACKSIDE_DATA_DIR=str(settings.data_dir),
            TRACKSIDE_PORT=str(self.port), TRACKSIDE_SECRET_KEY=settings.secret_key, TRACKSIDE_WORKERS=str(workers),
            TRACKSIDE_RACE_COUNTDOWN_S="1", TRACKSIDE_RACE_SLOT_S="60", TRACKSIDE_LOG_FORMAT="text",
        )  # fmt: skip
        self.log = log.open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "race_server.cli", "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"

    async def healthy(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_S
        async with httpx.AsyncClient() as client:
            while loop.time() < deadline:
                assert self.process.poll() is None, "server exited during start-up"
                try:
                    if (await client.get(f"{self.url}/healthz", timeout=2)).status_code == 200:
                        return
                except httpx.TransportError:
                    await asyncio.sleep(0.1)  # another process: nothing to await but its port
        raise AssertionError("server did not become healthy")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        self.log.close()


@pytest.fixture
def servers(settings: Settings, tmp_path: Path) -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


async def _socket(url: str, cookie: str) -> tuple[object, RaceSocket]:
    import websockets

    ws = await websockets.connect(url, additional_headers={"Cookie": cookie})
    return ws, RaceSocket(ws, int(url.rsplit("/", 1)[1]))


async def test_kill_9_mid_run_loses_no_lap(settings: Settings, servers: list[Server], tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    first = Server(settings, log)
    servers.append(first)
    await first.healthy()
    await make_user(settings, "organizer", "org@example.com")
    async with httpx.AsyncClient(base_url=first.url) as org, httpx.AsyncClient(base_url=first.url) as racer:
        assert (await org.post("/api/auth/login", json={"email": "org@example.com", "password": PASSWORD})).is_success
        race = (await org.post("/api/races", json=live_config())).json()
        race_id = race["id"]
        joined = await racer.post(f"/api/join/{race['invite_code']}",
                                  json={"email": "r@example.com", "password": PASSWORD})  # fmt: skip
        racer_id = joined.json()["user_id"]
        assert (await racer.post(f"/api/races/{race_id}/submissions",
                                 json={"driver": "reference", "reference_speed": 2.0})).status_code == 201  # fmt: skip
        cookie = f"trackside_session={org.cookies['trackside_session']}"

    ws, org_ws = await _socket(f"{first.ws_url}/ws/races/{race_id}", cookie)
    assert (await org_ws.command("subscribe"))["type"] == "ok"
    assert (await org_ws.command("launch_simulator"))["type"] == "ok"
    await org_ws.wait_type("simulator", status="running", timeout=90)
    assert (await org_ws.command("set_entries_open", open=False))["type"] == "ok"
    assert (await org_ws.command("launch_racer", racer_id=racer_id))["type"] == "ok"
    launched = await org_ws.wait_type("run_launched")
    lap = await org_ws.wait(lambda m: m["type"] == "lap" and m["valid"], timeout=60)
    first.kill()  # mid-run: the slot is 60 s and the first lap took ~9 s
    await ws.close()  # type: ignore[attr-defined]

    second = Server(settings, log)
    servers.append(second)
    await second.healthy()
    conn = await asyncpg.connect(str(settings.database_url))
    try:
        laps = await conn.fetch("SELECT run_id, lap_no, time_ms, valid FROM race_laps WHERE race_id = $1", race_id)
        status = await conn.fetchval("SELECT status FROM race_runs WHERE id = $1", launched["run_id"])
    finally:
        await conn.close()
    assert (launched["run_id"], lap["lap"], lap["time_ms"], True) in [tuple(r) for r in laps]
    assert status == "interrupted"

    ws, org_ws = await _socket(f"{second.ws_url}/ws/races/{race_id}", cookie)
    try:
        assert (await org_ws.command("subscribe"))["type"] == "ok"
        snapshot = await org_ws.wait_type("snapshot")
        assert snapshot["race"]["config"]["name"] == "Friday night LIVE"
        assert [row["racer_id"] for row in snapshot["leaderboard"]] == [racer_id]
        assert snapshot["leaderboard"][0]["time_ms"] == lap["time_ms"]
        entries = snapshot["queue"]["entries"]
        assert entries[0]["racer_id"] == racer_id and entries[0]["relaunch"] is True
        if snapshot["queue"]["simulator"] != "running":  # the new owner restarts the simulator itself
            await org_ws.wait_type("simulator", status="running", timeout=90)
        relaunched = await org_ws.command("relaunch_racer", racer_id=racer_id)
        assert relaunched["type"] == "ok", relaunched
        again = await org_ws.wait_type("run_launched", racer_id=racer_id)
        assert again["relaunch"] is True and again["run_id"] != launched["run_id"]
        await org_ws.wait_type("run_started", run_id=again["run_id"], timeout=30)
    finally:
        await ws.close()  # type: ignore[attr-defined]
