"""Every process a server starts dies with it, even when the server is killed with SIGKILL: the LIVE
race's simulator, the classic evaluator's worker, a training job and its rollout worker, and the
multiprocessing resource tracker. The restarted server takes the race back."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx

from race_server.settings import Settings
from tests.races_api.helpers import PASSWORD, classic_config, live_config, make_user
from tests.races_api.test_crash_recovery import Server, _socket, servers  # noqa: F401  (fixture)
from tests.trainer.test_service import LONG

GONE_WITHIN_S = 10.0


def descendants(pid: int) -> dict[int, str]:
    """Every live process below ``pid`` (pid -> command line), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            try:
                found[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its (new) parent's wait() is missing


async def job_in_progress(ws_url: str, job_id: int, cookie: str) -> None:
    """Until the job's feed (history first, then pushes) says it runs."""
    import websockets

    async with (
        asyncio.timeout(120),
        websockets.connect(f"{ws_url}/ws/jobs/{job_id}", additional_headers={"Cookie": cookie}) as feed,
    ):
        async for raw in feed:
            message = json.loads(raw)
            statuses = [message["job"]["status"]] if message["type"] == "history" else [message.get("status")]
            statuses += [event.get("status") for event in message.get("events", [])]
            if "in_progress" in statuses:
                return
    raise AssertionError(f"the feed of job {job_id} ended before it ran")


async def until(condition: object, within_s: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not condition():  # type: ignore[operator]
        # Other processes' state: there is no event to await, so a bounded poll.
        assert loop.time() < deadline, what
        await asyncio.sleep(0.05)


async def test_sigkill_mid_live_run_and_mid_training_leaves_no_process(
    settings: Settings,
    servers: list[Server],  # noqa: F811
    tmp_path: Path,
) -> None:
    log = tmp_path / "serve.log"
    first = Server(settings, log, workers=1)
    servers.append(first)
    await first.healthy()
    await make_user(settings, "organizer", "org@example.com")
    async with httpx.AsyncClient(base_url=first.url) as org, httpx.AsyncClient(base_url=first.url) as racer:
        assert (await org.post("/api/auth/login", json={"email": "org@example.com", "password": PASSWORD})).is_success
        race = (await org.post("/api/races", json=live_config())).json()
        classic = (await org.post("/api/races", json=classic_config())).json()
        joined = await racer.post(f"/api/join/{race['invite_code']}",
                                  json={"email": "r@example.com", "password": PASSWORD})  # fmt: skip
        racer_id = joined.json()["user_id"]
        await racer.post(f"/api/join/{classic['invite_code']}", json={})
        for race_id in (race["id"], classic["id"]):
            submitted = await racer.post(f"/api/races/{race_id}/submissions",
                                         json={"driver": "reference", "reference_speed": 2.0})  # fmt: skip
            assert submitted.status_code == 201, submitted.text
        job = (await racer.post("/api/jobs", json={**LONG, "options": {"workers": 1, "envs_per_worker": 1}})).json()
        cookie = f"trackside_session={org.cookies['trackside_session']}"

        ws, org_ws = await _socket(f"{first.ws_url}/ws/races/{race['id']}", cookie)
        assert (await org_ws.command("subscribe"))["type"] == "ok"
        launched = await org_ws.command("launch_simulator")
        assert launched["type"] == "ok", (launched.get("code"), launched.get("message"))
        await org_ws.wait_type("simulator", status="running", timeout=90)
        assert (await org_ws.command("set_entries_open", open=False))["type"] == "ok"
        assert (await org_ws.command("launch_racer", racer_id=racer_id))["type"] == "ok"
        await org_ws.wait_type("run_started", timeout=60)

        await job_in_progress(first.ws_url, job["id"], f"trackside_session={racer.cookies['trackside_session']}")

        # The job's own rollout worker: a grandchild of the server.
        def spawned() -> int:
            return sum("multiprocessing" in command for command in descendants(first.process.pid).values())

        await until(lambda: spawned() >= 4, 90, "expected the simulator, evaluator, job and rollout worker")

    left = descendants(first.process.pid)
    first.kill()
    await ws.close()  # type: ignore[attr-defined]
    await until(lambda: not any(alive(pid) for pid in left), GONE_WITHIN_S,
                f"left behind: { {p: c for p, c in left.items() if alive(p)} }")  # fmt: skip

    second = Server(settings, log, workers=1)
    servers.append(second)
    await second.healthy()
    ws, org_ws = await _socket(f"{second.ws_url}/ws/races/{race['id']}", cookie)
    try:
        assert (await org_ws.command("subscribe"))["type"] == "ok"
        snapshot = await org_ws.wait_type("snapshot")
        assert snapshot["queue"]["entries"][0]["racer_id"] == racer_id
        assert snapshot["queue"]["entries"][0]["relaunch"] is True
        if snapshot["queue"]["simulator"] != "running":
            await org_ws.wait_type("simulator", status="running", timeout=90)
    finally:
        await ws.close()  # type: ignore[attr-defined]
