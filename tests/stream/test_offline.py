"""A classic evaluation's video: drawn after the fact from its telemetry, served like a LIVE run's."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import av
import numpy as np
import pytest

from race_server.live.spec import DriverSpec, RunSpec
from race_server.queue.evaluator import evaluate_run
from race_server.settings import Settings
from race_server.sim.broadcast_solids import CAR_SHELL, SHADE_TOP
from race_server.stream.offline import record_evaluation
from tests.races_api.helpers import classic_config, login, make_user
from tests.stream.live_race import video_server

ROUTE = "reinvent_base"


def test_an_evaluation_is_drawn_from_its_telemetry(tmp_path: Path) -> None:
    spec = RunSpec(race_id=1, run_id=7, racer_id=3, route_id=ROUTE, reverse=False, objects={},
                   driver=DriverSpec("reference", reference_speed=2.0), slot_s=8.0, countdown_s=0.0)  # fmt: skip
    outcome = evaluate_run(spec, min_laps=1, max_s=8.0)
    assert len(outcome.telemetry) > 100
    path = tmp_path / "run-7.webm"
    info = record_evaluation(outcome.telemetry, outcome.laps, ROUTE, False, str(path), racer_name="Ada",
                             width=320, height=180, fps=15)  # fmt: skip
    assert info["frames"] > 0 and path.exists()
    with av.open(str(path), mode="r") as container:
        frames: list[np.ndarray] = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    # the whole drive at 15 fps, on the simulator's clock
    assert abs(len(frames) - info["seconds"] * 15) <= 2
    shell = np.array([round(c * SHADE_TOP) for c in CAR_SHELL])
    with_car = [np.any(np.all(np.abs(f.astype(int) - shell) <= 24, axis=-1)) for f in frames]
    assert sum(with_car) > 0.9 * len(frames)  # the chase camera keeps the car in every frame


@pytest.mark.slow
async def test_a_classic_evaluation_is_recorded_and_served(settings: Settings) -> None:
    async with video_server(settings, slot_s=10.0, width=320, height=180, fps=15) as server:
        await make_user(settings, "organizer", "org@example.com")
        await make_user(settings, "racer", "ann@example.com", alias="ann")
        org, ann = await login(server, "org@example.com"), await login(server, "ann@example.com")
        try:
            race = (await org.post("/api/races", json=classic_config(min_consecutive_laps=1))).json()
            assert (await ann.post(f"/api/join/{race['invite_code']}")).status_code == 200
            entry = await ann.post(f"/api/races/{race['id']}/submissions",
                                   json={"driver": "reference", "reference_speed": 2.0})  # fmt: skip
            assert entry.status_code == 201, entry.text
            url = ""
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 240
            while True:  # the evaluation, then its video, run in the evaluator's process: a bounded poll
                assert loop.time() < deadline, "no evaluation video"
                runs = (await ann.get(f"/api/races/{race['id']}/submissions")).json()["submissions"]
                run_id = (runs[0].get("result") or {}).get("run_id")
                if run_id is not None:
                    url = f"/api/races/{race['id']}/runs/{run_id}/video"
                    if (await ann.get(url, headers={"range": "bytes=0-0"})).status_code == 206:
                        break
                await asyncio.sleep(0.5)
            whole = await ann.get(url)
            with av.open(io.BytesIO(whole.content), mode="r") as container:
                assert sum(1 for _ in container.decode(video=0)) > 15
        finally:
            await org.aclose()
            await ann.aclose()
