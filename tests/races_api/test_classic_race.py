"""A classic race: submissions are evaluated with the race's rules and ranked by each method."""

from __future__ import annotations

from race_server.races import folders
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.races_api.helpers import classic_config, cookie_of, login, make_user, race_socket


async def test_classic_race_evaluates_and_ranks_by_each_method(race_server: LiveServer, settings: Settings) -> None:
    await make_user(settings, "organizer", "org@example.com")
    fast_id = await make_user(settings, "racer", "fast@example.com", alias="fast")
    slow_id = await make_user(settings, "racer", "slow@example.com", alias="slow")
    org = await login(race_server, "org@example.com")
    race = (await org.post("/api/races", json=classic_config(min_consecutive_laps=2))).json()
    race_id = race["id"]
    fast, slow = await login(race_server, "fast@example.com"), await login(race_server, "slow@example.com")
    for client in (fast, slow):
        assert (await client.post(f"/api/join/{race['invite_code']}")).status_code == 200

    async with race_socket(race_server, race_id, cookie=cookie_of(org)) as ws:
        assert (await ws.command("subscribe"))["type"] == "ok"
        await ws.wait_type("snapshot")
        for client, speed in ((fast, 2.0), (slow, 1.2), (slow, 1.5)):
            response = await client.post(f"/api/races/{race_id}/submissions",
                                         json={"driver": "reference", "reference_speed": speed})  # fmt: skip
            assert response.status_code == 201 and response.json()["status"] == "queued"
        for _ in range(3):  # one leaderboard event per evaluated submission
            await ws.wait_type("leaderboard", timeout=120)
        laps = [m for m in ws.seen if m["type"] == "lap"]

    subs = (await org.get(f"/api/races/{race_id}/submissions")).json()["submissions"]
    assert [s["status"] for s in subs] == ["evaluated"] * 3
    assert all(s["result"]["reason"] == "completed" and s["result"]["laps"] >= 2 for s in subs)
    by_run: dict[int, list[int]] = {}
    racer_of: dict[int, int] = {}
    for lap in laps:
        assert lap["valid"]
        by_run.setdefault(lap["run_id"], []).append(lap["time_ms"])
        racer_of[lap["run_id"]] = lap["racer_id"]

    def best(racer: int, score: str) -> float:
        values = []
        for run, times in by_run.items():
            if racer_of[run] != racer:
                continue
            pairs = [times[i] + times[i + 1] for i in range(len(times) - 1)]
            values.append({"best_lap": min(times), "average": min(pairs) / 2, "total_time": min(pairs)}[score])
        return min(values)

    for method in ("best_lap", "average", "total_time"):
        assert (await org.patch(f"/api/races/{race_id}", json={"ranking": method})).status_code == 200
        rows = (await org.get(f"/api/races/{race_id}/leaderboard")).json()["rows"]
        expected = sorted((fast_id, slow_id), key=lambda r: best(r, method))
        assert [row["racer_id"] for row in rows] == expected, method
        assert [row["time_ms"] for row in rows] == [best(r, method) for r in expected], method

    # The minimum consecutive laps decides who appears at all.
    assert (await org.patch(f"/api/races/{race_id}", json={"min_consecutive_laps": 10})).status_code == 200
    assert (await org.get(f"/api/races/{race_id}/leaderboard")).json()["rows"] == []
    run_id = next(iter(by_run))
    owner = fast if racer_of[run_id] == fast_id else slow
    trace = await owner.get(f"/api/races/{race_id}/runs/{run_id}/simtrace.csv")
    assert trace.status_code == 200 and len(trace.text.splitlines()) > 10

    # Deleting the race deletes its run logs; another race's files stay.
    other_id = (await org.post("/api/races", json=classic_config())).json()["id"]
    kept = folders.run_dir(settings.data_dir, other_id, 1) / "metrics.json"
    kept.parent.mkdir(parents=True)
    kept.write_text("{}")
    runs = folders.race_dir(settings.data_dir, race_id)
    assert (runs / "runs" / str(run_id)).is_dir()
    assert (await org.delete(f"/api/races/{race_id}")).status_code == 200
    assert not runs.exists() and kept.exists()
    assert (await owner.get(f"/api/races/{race_id}/runs/{run_id}/simtrace.csv")).status_code == 404
    for client in (org, fast, slow):
        await client.aclose()
