"""A whole LIVE race over real HTTP and websockets, with the real RaceHost at 15 Hz real time.

Racers race with "house" entries (the built-in reference driver) at different speeds; the slot is
shortened to 15 s so two runs take well under a minute.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from race_server.api.race_runtime import RaceOptions
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.races_api.helpers import PASSWORD, cookie_of, live_config, login, make_user, race_socket

SLOT_S = 15.0


@pytest.fixture
async def realtime_server(settings: Settings) -> AsyncIterator[LiveServer]:
    server = LiveServer(replace(settings, run_workers=False), bus_prefix=f"test-{uuid.uuid4().hex[:8]}:")
    server.app.state.race_options = RaceOptions(realtime=True, countdown_s=2, time_per_racer_s=SLOT_S)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def speeds(messages: list[dict[str, Any]], racer_id: int, multiplier: float) -> list[float]:
    return [
        m["speed"]
        for m in messages
        if m["type"] == "telemetry" and m["racer_id"] == racer_id and m["multiplier"] == multiplier
    ]


async def test_full_live_race(realtime_server: LiveServer, settings: Settings) -> None:
    server = realtime_server
    await make_user(settings, "organizer", "org@example.com")
    await make_user(settings, "racer", "ann@example.com", alias="ann")
    organizer = await login(server, "org@example.com")
    created = await organizer.post("/api/races", json=live_config())
    assert created.status_code == 201, created.text
    race_id, code = created.json()["id"], created.json()["invite_code"]

    # Bob has no account: the race's link is his invitation; Ann signs in, then follows the link.
    bob = httpx.AsyncClient(base_url=server.url)
    joined = await bob.post(f"/api/join/{code}", json={"email": "bob@example.com", "password": PASSWORD,
                                                        "alias": "bob"})  # fmt: skip
    assert joined.status_code == 201, joined.text
    bob_id = joined.json()["user_id"]
    ann = await login(server, "ann@example.com")
    joined = await ann.post(f"/api/join/{code}")
    assert joined.status_code == 200, joined.text
    ann_id = joined.json()["user_id"]

    # House entries (the reference driver); Bob submits twice and only his last entry races.
    assert (
        await bob.post(f"/api/races/{race_id}/submissions", json={"driver": "reference", "reference_speed": 0.8})
    ).status_code == 201
    bob_last = await bob.post(f"/api/races/{race_id}/submissions", json={"driver": "reference",
                                                                         "reference_speed": 1.5})  # fmt: skip
    ann_sub = await ann.post(f"/api/races/{race_id}/submissions", json={"driver": "reference",
                                                                        "reference_speed": 1.2})  # fmt: skip
    assert bob_last.status_code == ann_sub.status_code == 201

    async with (
        race_socket(server, race_id, cookie=cookie_of(organizer)) as org_ws,
        race_socket(server, race_id, cookie=cookie_of(ann)) as ann_ws,
        race_socket(server, race_id, cookie=cookie_of(bob)) as bob_ws,
    ):
        for ws in (org_ws, ann_ws, bob_ws):
            assert (await ws.command("subscribe"))["type"] == "ok"
            snapshot = await ws.wait_type("snapshot")
            assert snapshot["race"]["config"]["name"] == "Friday night LIVE"

        refused = await org_ws.command("launch_racer", racer_id=ann_id)
        assert refused["type"] == "error" and refused["code"] == "entries_open"
        assert (await org_ws.command("launch_simulator"))["type"] == "ok"
        await org_ws.wait_type("simulator", status="running", timeout=90)

        assert (await org_ws.command("set_entries_open", open=False))["type"] == "ok"
        queue = await org_ws.wait_type("queue")
        entries = queue["entries"]
        assert [e["racer_id"] for e in entries] == [bob_id, ann_id]
        assert entries[0]["model_id"] == bob_last.json()["id"]  # the last submission races

        # Reorder: Ann first (saved with the version the edit started from).
        assert (await org_ws.command("begin_queue_edit"))["type"] == "ok"
        saved = await org_ws.command("save_queue", order=[ann_id, bob_id], version=queue["version"])
        assert saved["type"] == "ok", saved
        assert [e["racer_id"] for e in (await org_ws.wait_type("queue"))["entries"]] == [ann_id, bob_id]

        for racer_id, racer_ws, other_ws, boost in ((ann_id, ann_ws, bob_ws, 1.5), (bob_id, bob_ws, ann_ws, 1.2)):
            assert (await org_ws.command("launch_racer", racer_id=racer_id))["type"] == "ok"
            launched = await racer_ws.wait_type("run_launched", racer_id=racer_id)
            early = await racer_ws.command("speed_control", multiplier=1.5)
            assert early["type"] == "error" and early["code"] == "not_on_track"  # countdown: not yet
            await racer_ws.wait_type("run_started", racer_id=racer_id, timeout=30)
            await racer_ws.wait(lambda m: m["type"] == "telemetry" and m["t"] > 3.0, timeout=30)
            other = await other_ws.command("speed_control", multiplier=2.0)
            assert other["type"] == "error" and other["code"] == "not_on_track"
            organizer_try = await org_ws.command("speed_control", multiplier=2.0)
            assert organizer_try["type"] == "error" and organizer_try["code"] == "forbidden"
            assert (await racer_ws.command("speed_control", multiplier=boost))["type"] == "ok"
            await racer_ws.wait_type("speed", racer_id=racer_id, multiplier=boost, timeout=10)
            await racer_ws.wait_type("checkered", racer_id=racer_id, timeout=60)
            before, after = speeds(racer_ws.seen, racer_id, 1.0), speeds(racer_ws.seen, racer_id, boost)
            assert before and after
            assert max(after) > 1.1 * max(before), (max(before), max(after))
            await org_ws.wait_type("replay_ended", run_id=launched["run_id"], timeout=30)
            late = await racer_ws.command("speed_control", multiplier=1.0)
            assert late["type"] == "error" and late["code"] == "not_on_track"

        laps = [m for m in org_ws.seen if m["type"] == "lap" and m["valid"]]
        assert {lap["racer_id"] for lap in laps} == {ann_id, bob_id}
        board = (await organizer.get(f"/api/races/{race_id}/leaderboard")).json()["rows"]
        best = {r: min(lap["time_ms"] for lap in laps if lap["racer_id"] == r) for r in (ann_id, bob_id)}
        expected = sorted(best, key=lambda r: best[r])
        assert [row["racer_id"] for row in board] == expected
        assert board[0]["time_ms"] == best[expected[0]] and board[1]["gap_ms"] > 0

        assert (await org_ws.command("declare_winner"))["type"] == "ok"
        winner = await ann_ws.wait_type("winner_declared")
        assert winner["racer_id"] == expected[0]
        again = await org_ws.command("launch_racer", racer_id=bob_id)
        assert again["type"] == "error" and again["code"] == "race_over"

    # Every completed lap is in the database as the leaderboard saw it, and the logs are there.
    runs = {m["racer_id"]: m["run_id"] for m in org_ws.seen if m["type"] == "run_launched"}
    trace = await ann.get(f"/api/races/{race_id}/runs/{runs[ann_id]}/simtrace.csv")
    assert trace.status_code == 200 and trace.text.startswith("episode,steps,X,Y,yaw")
    assert (await ann.get(f"/api/races/{race_id}/runs/{runs[bob_id]}/simtrace.csv")).status_code == 403
    metrics = await bob.get(f"/api/races/{race_id}/runs/{runs[bob_id]}/metrics.json")
    assert metrics.status_code == 200 and metrics.json()["metrics"]
    for client in (organizer, ann, bob):
        await client.aclose()
