"""``trackside bench race``: a real server on loopback, a LIVE race, hundreds of spectators, training.

The server runs as a subprocess (``python -m race_server.cli serve`` on a fresh database of the local
PostgreSQL, else its embedded one) so its CPU is measured apart from the clients'. A house racer
(the reference driver) races at 15 Hz real time on the shortest track; ``ws_clients`` spectators
(viewer token) in their own processes subscribe to the race; the racer's own connection changes
the speed multiplier at random moments; a training job (HTTP jobs API) keeps a core busy.

Every figure is end to end, read off wall clocks of one machine (``time.time()``):

- ``lap_event_fanout_p99_ms``: a lap event's ``emitted_at`` (the simulator process, the tick that
  completed the lap) → received by each spectator; p99 over every (client, lap) pair.
- ``speed_control_apply_p99_ms``: the racer's ``speed_control`` sent → ``tick_at`` of the first
  telemetry carrying the new multiplier (the sim step that applied it).
- ``tick_jitter_p99_ms``: how late each 15 Hz tick started against its deadline (``tick_late_ms``,
  the host clock's own measurement, carried by the racer's 15 Hz telemetry).
- ``server_cpu_pct``: the server process and its children (the race host), the training job's
  process tree excluded, from ``/proc/<pid>/stat``; 100 % is one core.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import numpy as np
import websockets

from race_server.bench.procstat import CpuSample, all_processes, cpu_pct, process_tree
from race_server.bench.race_clients import Message, RacerView, Socket, Spectators

BASE_DSN = os.environ.get("TRACKSIDE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TRACK = "Bowtie_track"  # the shortest track (17 m): a lap every ~9 s
REFERENCE_SPEED = 1.8  # m/s; with the multipliers below the car stays under ~2 m/s and on track
MULTIPLIERS = (0.9, 0.95, 1.0, 1.05, 1.1)
WARMUP_S = 2.0  # after Go, before the window: connections settled, the car up to speed
PASSWORD = "bench password 1"
STARTUP_S = 120.0
REWARD = "def reward_function(params):\n    return float(params['speed'])\n"


def _say(text: str) -> None:
    print(f"[bench race] {text}", file=sys.stderr, flush=True)


def _p(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(np.asarray(values, dtype=np.float64), q)), 3) if values else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the server subprocess and its database ---------------------------------------------------------
@contextlib.asynccontextmanager
async def _database() -> Any:
    """A fresh database on the local PostgreSQL (dropped afterwards); None: use the embedded one."""
    try:
        admin = await asyncpg.connect(BASE_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        yield None
        return
    name = f"trackside_bench_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(BASE_DSN)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
    finally:
        with contextlib.suppress(asyncpg.PostgresError):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


class Server:
    def __init__(self, data_dir: Path, dsn: str | None, *, slot_s: float, workers: bool) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.dsn = dsn
        self.data_dir = data_dir
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update(
            TRACKSIDE_DATA_DIR=str(data_dir),
            TRACKSIDE_PORT=str(self.port),
            TRACKSIDE_LOG_LEVEL="warning",
            TRACKSIDE_LOG_FORMAT="text",
            TRACKSIDE_WORKERS="1" if workers else "0",
            TRACKSIDE_RACE_REALTIME="1",
            TRACKSIDE_RACE_COUNTDOWN_S="1",
            TRACKSIDE_RACE_SLOT_S=str(slot_s),
        )
        if dsn is not None:
            env["DATABASE_URL"] = dsn
        self.log_path = data_dir.parent / "server.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "race_server.cli", "serve"], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log_tail(self, chars: int = 3000) -> str:
        self._log.flush()
        return self.log_path.read_text()[-chars:]

    async def wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_S
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.2)  # another process binds the port: nothing to await on
        raise RuntimeError(f"the server was not healthy within {STARTUP_S:.0f} s:\n{self.log_tail()}")

    async def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(self.process.wait, 30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait, 10)
        self._log.close()


async def _make_organizer(dsn: str | None, data_dir: Path, port: int) -> None:
    email = "bench-organizer@example.com"
    if dsn is None:
        env = {**os.environ, "TRACKSIDE_DATA_DIR": str(data_dir), "TRACKSIDE_PORT": str(port)}
        env.pop("DATABASE_URL", None)
        cmd = [sys.executable, "-m", "race_server.cli", "admin", "create-organizer", "--email", email]
        done = await asyncio.to_thread(
            subprocess.run, [*cmd, "--password", PASSWORD], env=env, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"create-organizer failed: {done.stderr}")
        return
    from race_server import auth
    from race_server.db import users

    conn = await asyncpg.connect(dsn)
    try:
        hashed = await auth.hash_password(PASSWORD)
        await users.create(conn, role="organizer", email=email, password_hash=hashed, alias="bench")
    finally:
        await conn.close()


def _cookie(client: httpx.AsyncClient) -> str:
    from race_server import auth

    return f"{auth.SESSION_COOKIE}={client.cookies[auth.SESSION_COOKIE]}"


async def _ok(response: httpx.Response, status: int = 200) -> Message:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} {response.text}")
    body: Message = response.json()
    return body


async def _job_status(client: httpx.AsyncClient, job_id: int) -> str:
    return str((await _ok(await client.get(f"/api/jobs/{job_id}")))["status"])


async def _child_pid(dsn: str | None, job_id: int) -> int | None:
    if dsn is None:
        return None
    conn = await asyncpg.connect(dsn)
    try:
        pid: int | None = await conn.fetchval("SELECT child_pid FROM jobs WHERE id = $1", job_id)
    finally:
        await conn.close()
    return pid


@contextlib.contextmanager
def _temp_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="trackside-bench-") as name:
        yield Path(name)


async def _benchmark(ws_clients: int, seconds: float, with_training: bool, processes: int, seed: int) -> Message:
    slot_s = round(1.0 + WARMUP_S + seconds + 5.0, 1)
    with _temp_dir() as tmp:
        async with _database() as dsn:
            server = Server(tmp / "data", dsn, slot_s=slot_s, workers=with_training)
            try:
                await server.wait_healthy()
                _say(f"server pid {server.process.pid} on {server.url} ({'local' if dsn else 'embedded'} PostgreSQL)")
                result = await _race(server, ws_clients, seconds, with_training, processes, seed)
                return {**result, "database": "local" if dsn else "embedded"}
            finally:
                await server.stop()


async def _race(server: Server, ws_clients: int, seconds: float, with_training: bool, processes: int,
                seed: int) -> Message:  # fmt: skip
    await _make_organizer(server.dsn, server.data_dir, server.port)
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as org,
        httpx.AsyncClient(base_url=server.url, timeout=30) as racer,
    ):
        login = {"email": "bench-organizer@example.com", "password": PASSWORD}
        await _ok(await org.post("/api/auth/login", json=login))
        job_id: int | None = None
        if with_training:
            job = {
                "kind": "training", "name": "bench-load", "reward_function": REWARD,
                "stop": {"max_minutes": max(10.0, (seconds + 300.0) / 60.0)},
                "options": {"workers": 0, "envs_per_worker": 1},
            }  # fmt: skip
            job_id = int((await _ok(await org.post("/api/jobs", json=job), 201))["id"])
        start = "2020-01-01T00:00:00+00:00"
        race = await _ok(await org.post("/api/races", json={
            "name": "Benchmark LIVE", "format": "live", "track_id": TRACK, "start": start,
            "end": "2099-01-01T00:00:00+00:00", "time_per_racer_min": 1, "replay_s": 0,
        }), 201)  # fmt: skip
        race_id, code = int(race["id"]), str(race["invite_code"])
        viewer = str((await _ok(await org.post(f"/api/races/{race_id}/viewer-token"), 201))["token"])
        joined = await _ok(await racer.post(f"/api/join/{code}", json={
            "email": "bench-racer@example.com", "password": PASSWORD, "alias": "house"}), 201)  # fmt: skip
        racer_id = int(joined["user_id"])
        await _ok(await racer.post(f"/api/races/{race_id}/submissions",
                                   json={"driver": "reference", "reference_speed": REFERENCE_SPEED}), 201)  # fmt: skip

        ws_base = f"{server.ws_url}/ws/races/{race_id}"
        view = RacerView()
        org_ws = Socket(await websockets.connect(ws_base, additional_headers={"Cookie": _cookie(org)}),
                        race_id, lambda m, t: None)  # fmt: skip
        racer_ws = Socket(await websockets.connect(ws_base, additional_headers={"Cookie": _cookie(racer)}),
                          race_id, view.on_message)  # fmt: skip
        spectators = Spectators(f"{ws_base}?viewer={viewer}", race_id, ws_clients, processes)
        child_pid: int | None = None
        try:
            for ws in (org_ws, racer_ws):
                await ws.command("subscribe")
            running = org_ws.expect(lambda m: m["type"] == "simulator" and m.get("status") == "running")
            await _expect_ok(org_ws, "launch_simulator")
            await asyncio.wait_for(running, STARTUP_S)
            await _expect_ok(org_ws, "set_entries_open", open=False)
            connected, failed = await spectators.ready()
            _say(f"{connected} spectators subscribed ({failed} failed)")
            if job_id is not None:
                await _wait_training(org, job_id)
            started = racer_ws.expect(lambda m: m["type"] == "run_started")
            await _expect_ok(org_ws, "launch_racer", racer_id=racer_id)
            await asyncio.wait_for(started, 60)
            window_start = time.time() + WARMUP_S
            await asyncio.sleep(WARMUP_S)
            cpu_start = CpuSample.take()
            _say(f"measuring for {seconds:.0f} s")
            speed = await _speed_changes(racer_ws, window_start + seconds, seed)
            cpu_end = CpuSample.take()
            window_end = time.time()
            training_running = False
            if job_id is not None:
                child_pid = await _child_pid(server.dsn, job_id)
                training_running = await _job_status(org, job_id) == "in_progress" and (
                    child_pid is None or child_pid in all_processes()
                )
            await asyncio.sleep(1.0)  # laps emitted just before the window closed are still on their way
            seen = await spectators.stop()
        finally:
            for ws in (org_ws, racer_ws):
                await ws.close()
        if job_id is not None:
            with contextlib.suppress(httpx.HTTPError):
                await org.post(f"/api/jobs/{job_id}/stop")

    procs = all_processes()
    training_pids = process_tree(procs, child_pid) if child_pid is not None else set()
    server_pids = process_tree(procs, server.process.pid) - training_pids
    client_pids = spectators.pids
    in_window = [(e, r) for e, r in seen.laps if window_start <= e <= window_end]
    laps = {(m["run_id"], m["lap"]) for m in view.laps if window_start <= float(m.get("emitted_at") or 0) <= window_end}
    ticks = [m for m in view.telemetry if window_start <= float(m.get("tick_at") or 0) <= window_end]
    fanout = [(r - e) * 1000.0 for e, r in in_window]
    by_lap: dict[float, list[float]] = {}
    for e, r in in_window:
        by_lap.setdefault(e, []).append((r - e) * 1000.0)
    first = [min(v) for v in by_lap.values()]  # the path to the first client: store, publish, feed
    jitter = [float(m["tick_late_ms"]) for m in ticks if m.get("tick_late_ms") is not None]
    return {
        "ws_clients": ws_clients,
        "lap_event_fanout_p99_ms": _p(fanout, 99),
        "speed_control_apply_p99_ms": _p(speed["apply_ms"], 99),
        "tick_jitter_p99_ms": _p(jitter, 99),
        "server_cpu_pct": cpu_pct(cpu_start, cpu_end, server_pids),
        "laps": len(laps),
        "seconds": round(window_end - window_start, 2),
        "training_running": training_running,
        "lap_event_fanout_p50_ms": _p(fanout, 50),
        "lap_event_fanout_max_ms": round(max(fanout), 3) if fanout else None,
        "lap_event_first_client_p50_ms": _p(first, 50),
        "lap_deliveries": len(in_window),
        "lap_deliveries_expected": len(laps) * seen.ready,
        "speed_changes": len(speed["apply_ms"]),
        "speed_control_apply_p50_ms": _p(speed["apply_ms"], 50),
        "speed_control_next_tick_pct": _next_tick_pct(speed["changes"], view.telemetry),
        "speed_control_ack_p99_ms": _p(speed["ack_ms"], 99),
        "speed_control_errors": speed["errors"],
        "ticks": len(ticks),
        "tick_jitter_p50_ms": _p(jitter, 50),
        "tick_jitter_max_ms": round(max(jitter), 3) if jitter else None,
        "server_main_cpu_pct": cpu_pct(cpu_start, cpu_end, {server.process.pid}),
        "training_cpu_pct": cpu_pct(cpu_start, cpu_end, training_pids) if with_training else 0.0,
        "client_cpu_pct": cpu_pct(cpu_start, cpu_end, client_pids),
        "client_processes": len(client_pids),
        "machine_cpu_pct": cpu_end.machine_pct(cpu_start),
        "machine_cores": os.cpu_count(),
        "ws_subscribed": seen.ready,
        "ws_failed": seen.failed,
        "ws_dropped": seen.dropped,
        "ws_messages": seen.messages,
    }


async def _expect_ok(ws: Socket, kind: str, **fields: Any) -> None:
    reply, _ = await ws.command(kind, **fields)
    if reply["type"] != "ok":
        raise RuntimeError(f"{kind} refused: {reply}")


async def _wait_training(org: httpx.AsyncClient, job_id: int) -> None:
    deadline = time.monotonic() + STARTUP_S
    while (status := await _job_status(org, job_id)) != "in_progress":
        if status in ("failed", "completed", "canceled") or time.monotonic() > deadline:
            raise RuntimeError(f"the training job did not start (it is {status})")
        await asyncio.sleep(0.5)  # HTTP has no push for jobs here: poll, bounded
    _say(f"training job {job_id} in progress")


async def _speed_changes(racer: Socket, until: float, seed: int) -> dict[str, Any]:
    """Change the multiplier at random moments until ``until``; each change is timed from the send to
    the tick that applied it (the first telemetry carrying the new value)."""
    rng = np.random.default_rng(seed)
    apply_ms: list[float] = []
    ack_ms: list[float] = []
    changes: list[tuple[float, float]] = []  # (sent, tick_at of the applying tick)
    errors = 0
    current = 1.0
    while time.time() < until:
        # a random phase against the 15 Hz grid, so the figure samples the whole tick period
        await asyncio.sleep(float(rng.uniform(0.1, 0.4)))
        value = float(rng.choice([m for m in MULTIPLIERS if abs(m - current) > 1e-6]))

        before = time.time()

        def carries(message: Message, value: float = value, before: float = before) -> bool:
            # the speed event says when the simulator applied the change (between physics
            # sub-steps); a tick that started after the send and carries it is the fallback
            return (
                (message["type"] == "speed" and message.get("applied_at") is not None)
                or (message["type"] == "telemetry" and float(message.get("tick_at") or 0.0) >= before)
            ) and abs(float(message["multiplier"]) - value) < 1e-6

        applied = racer.expect(carries)
        reply, sent = await racer.command("speed_control", multiplier=value)
        acked = time.time()
        if reply["type"] != "ok":
            errors += 1
            applied.cancel()
            continue
        seen = await asyncio.wait_for(applied, 10)
        at = float(seen["applied_at"] if seen["type"] == "speed" else seen["tick_at"])
        changes.append((sent, at))
        apply_ms.append((at - sent) * 1000.0)
        ack_ms.append((acked - sent) * 1000.0)
        current = value
    return {"apply_ms": apply_ms, "ack_ms": ack_ms, "errors": errors, "changes": changes}


def _next_tick_pct(applied: list[tuple[float, float]], telemetry: list[Message]) -> float | None:
    """Share of changes applied no later than the first tick that started after they were sent."""
    ticks = np.sort(np.asarray([float(m["tick_at"]) for m in telemetry if m.get("tick_at")], dtype=np.float64))
    if not applied or not len(ticks):
        return None
    nexts = np.searchsorted(ticks, [sent for sent, _ in applied], side="right")
    hits = sum(1 for i, (_, at) in zip(nexts, applied, strict=True) if i < len(ticks) and at <= ticks[i])
    return round(100.0 * hits / len(applied), 1)


def run_race_benchmark_full(
    ws_clients: int = 500, seconds: float = 60.0, with_training: bool = True, *, client_processes: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Run the whole race benchmark (a server subprocess, a LIVE race, spectators) and return its figures."""
    processes = client_processes or (1 if ws_clients <= 100 else 2)
    return asyncio.run(_benchmark(ws_clients, seconds, with_training, processes, seed))
