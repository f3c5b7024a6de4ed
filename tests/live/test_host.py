"""RaceHost end to end: a real simulator process driven through the asyncio API."""

from __future__ import annotations

import itertools
import math
import os
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from race_server.live.events import HostEvent, RunEnded, RunStarted, Telemetry
from race_server.live.host import DriverSpec, RaceHost, RaceHostError, RunSpec, to_protocol
from race_server.live.spec import applied_speed
from race_server.protocol import validate_server_message
from race_server.races.ranking import Lap
from race_server.sim.bench import pure_pursuit
from race_server.sim.episode import EpisodeConfig, Simulation

ROUTE = "reinvent_base"


def spec(run_id: int = 1, **changes: Any) -> RunSpec:
    fields: dict[str, Any] = {
        "race_id": 1,
        "run_id": run_id,
        "racer_id": 7,
        "route_id": ROUTE,
        "reverse": False,
        "objects": {},
        "driver": DriverSpec("reference", reference_speed=1.5),
        "slot_s": 30.0,
        "countdown_s": 0.0,
    }
    fields.update(changes)
    return RunSpec(**fields)


async def until_run_end(events: AsyncIterator[HostEvent]) -> list[dict[str, Any]]:
    """The wire form of each event up to the run's end (their fields are what these tests check)."""
    out = []
    async for event in events:
        out.append(event.wire)
        if isinstance(event, RunEnded):
            return out
    raise AssertionError(f"events ended without run_end: {[e['type'] for e in out]}")


def assert_protocol(events: list[dict[str, Any]]) -> None:
    for event in events:
        message = to_protocol(event)
        if message is not None:
            validate_server_message(message)


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
async def host() -> AsyncIterator[RaceHost]:
    h = RaceHost(1, realtime=False)
    await h.start(ROUTE, False)
    yield h
    await h.close()


def sim_lap_times(speed: float, seconds: float) -> list[float]:
    """The simulator's own lap timing for the reference driver, stepped without any host."""
    sim = Simulation(ROUTE, episode=EpisodeConfig(mode="evaluation", continuous_laps=True, max_steps=10**9))
    sim.reset()
    for _ in range(round(seconds * 15)):
        world = sim.world
        assert world is not None
        sim.step(*pure_pursuit(sim.track, world.x, world.y, world.yaw, speed))
    return sim.metrics.laps


async def test_reference_driver_laps_are_the_sims_lap_times(host: RaceHost) -> None:
    await host.launch(spec(slot_s=30.0, countdown_s=10.0))
    events = await until_run_end(host.events())

    kinds = [e["type"] for e in events]
    countdown = [e for e in events if e["type"] == "countdown"]
    assert [e["value"] for e in countdown] == list(range(10, 0, -1))
    assert [e["t"] for e in countdown] == pytest.approx([-float(v) for v in range(10, 0, -1)])
    assert kinds.index("run_started") == len(countdown)
    assert kinds.count("telemetry") == 30 * 15

    laps = [e for e in events if e["type"] == "lap"]
    valid = [e for e in laps if e["valid"]]
    expected = sim_lap_times(1.5, 30.0)
    assert len(valid) == len(expected) == 2
    for event, seconds in zip(valid, expected, strict=True):
        # timing rounds each crossing to the millisecond, so a lap is within 1 ms of the sim's
        assert abs(event["time_ms"] - seconds * 1000.0) <= 1.0
        assert sum(event["sectors_ms"]) == event["time_ms"]
        assert len(event["sectors_ms"]) == 3
    # the lap in progress at the flag is not counted
    assert laps[-1]["valid"] is False and laps[-1]["reason"] == "time_up"
    end = events[-1]
    assert end["reason"] == "time_up" and end["laps"] == 2 and end["t"] == 30.0

    assert_protocol(events)
    assert all(e["race_id"] == 1 and e["run_id"] == 1 for e in events)
    telemetry_t = [e["t"] for e in events if e["type"] == "telemetry"]
    assert telemetry_t == sorted(telemetry_t) and telemetry_t[-1] == pytest.approx(30.0)


async def test_restored_laps_set_the_session_bests() -> None:
    fast = Lap(racer_id=3, run_id=1, lap_no=1, time_ms=3000, valid=True, order=1, sectors_ms=(1000, 1000, 1000))
    host = RaceHost(1, realtime=False)
    await host.start(ROUTE, False, laps=[fast])
    try:
        await host.launch(spec(slot_s=13.0))
        events = await until_run_end(host.events())
        sectors = [e for e in events if e["type"] == "sector"]
        lap = next(e for e in events if e["type"] == "lap" and e["valid"])
        assert [e["colour"] for e in sectors] == ["green", "green", "green"]
        assert lap["colour"] == "green"

        await host.clear_timing()
        await host.launch(spec(run_id=2, slot_s=13.0))
        events = await until_run_end(host.events())
        assert [e["colour"] for e in events if e["type"] == "sector"] == ["purple"] * 3
    finally:
        await host.close()


async def test_speed_multiplier_scales_speed_and_never_steering(host: RaceHost) -> None:
    base = DriverSpec("reference", reference_speed=1.0)
    await host.launch(spec(run_id=1, slot_s=40.0, driver=base))
    normal = await until_run_end(host.events())

    await host.launch(spec(run_id=2, slot_s=40.0, driver=base))
    assert await host.set_speed_multiplier(2.0) == 2.0
    applied_step = host.last_speed_ack["step"] or 0
    fast = await until_run_end(host.events())

    assert any(e["type"] == "speed" and e["multiplier"] == 2.0 for e in fast)
    stepped = [e for e in fast if e["type"] == "telemetry" and e["host"] is not None]
    for event in stepped:
        policy, applied = event["host"]["policy"], event["host"]["applied"]
        assert applied[0] == policy[0]  # steering untouched
        multiplier = 2.0 if event["host"]["step"] >= applied_step else 1.0
        assert applied[1] == applied_speed(policy[1], multiplier)
        assert event["multiplier"] == multiplier

    def progress_per_second(events: list[dict[str, Any]]) -> float:
        """Centre-line progress per sim second over 10 s starting 2 s after the change."""
        window = [e for e in events if e["type"] == "telemetry"][applied_step + 30 : applied_step + 180]
        total = 0.0
        for a, b in itertools.pairwise(window):
            total += (float(b["progress"]) - float(a["progress"])) % 100.0
        return total / (float(window[-1]["t"]) - float(window[0]["t"]))

    assert progress_per_second(fast) > 1.7 * progress_per_second(normal)


@pytest.mark.parametrize("bad", [0.45, 2.05, 1.03, 0.0, -1.0, math.nan, math.inf])
async def test_multipliers_off_the_slider_are_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="not on the slider"):
        await RaceHost(1).set_speed_multiplier(bad)


async def test_abort_ends_the_run(host: RaceHost) -> None:
    await host.launch(spec(slot_s=600.0))
    with pytest.raises(RaceHostError, match="still on track"):
        await host.launch(spec(run_id=2))
    events = host.events()
    async for event in events:
        if isinstance(event, RunStarted):
            break
    await host.abort("organizer stopped the run")
    tail = await until_run_end(events)
    end = tail[-1]
    assert end["reason"] == "aborted" and end["message"] == "organizer stopped the run"
    assert end["t"] < 600.0
    assert tail[-2]["type"] == "lap" and tail[-2]["valid"] is False

    # idle again: the simulator takes the next racer
    await host.launch(spec(run_id=2, slot_s=1.0))
    assert (await until_run_end(host.events()))[-1]["reason"] == "time_up"


async def test_reset_interrupts_the_run(host: RaceHost) -> None:
    await host.launch(spec(slot_s=600.0, countdown_s=600.0))
    await host.reset()
    events = await until_run_end(host.events())
    assert events[-1]["reason"] == "interrupted"
    assert "run_started" not in [e["type"] for e in events]


async def test_an_onnx_model_drives(host: RaceHost, tmp_path: Any) -> None:
    from tests.live.policies import write_policy

    discrete = write_policy(tmp_path / "discrete", continuous=False)
    await host.launch(spec(slot_s=3.0, driver=discrete))
    events = await until_run_end(host.events())
    telemetry = [e for e in events if e["type"] == "telemetry"]
    assert len(telemetry) == 45
    commands = {tuple(e["host"]["policy"]) for e in telemetry if e["host"] is not None}
    allowed = {(float(s), v) for s in (-30, -15, 0, 15, 30) for v in (0.5, 1.0)}
    assert commands and commands <= allowed
    assert max(e["speed"] for e in telemetry) > 0.1

    continuous = write_policy(tmp_path / "continuous", continuous=True)
    await host.launch(spec(run_id=2, slot_s=2.0, driver=continuous))
    events = await until_run_end(host.events())
    for event in events:
        if event["type"] == "telemetry" and event["host"] is not None:
            steer, speed = event["host"]["policy"]
            assert -30.0 <= steer <= 30.0 and 0.5 <= speed <= 2.0
    assert events[-1]["reason"] == "time_up"


async def test_a_model_that_cannot_load_fails_the_run(host: RaceHost, tmp_path: Any) -> None:
    from race_server.sim.metadata import default_model_metadata

    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"not a model")
    driver = DriverSpec("onnx", onnx_path=broken, model_metadata=default_model_metadata())
    await host.launch(spec(driver=driver))
    events = await until_run_end(host.events())
    assert events[-1]["reason"] == "run_failed" and "model.onnx" in events[-1]["message"]


async def test_off_track_penalties_hold_the_car(host: RaceHost) -> None:
    too_fast = DriverSpec("reference", reference_speed=4.0)
    await host.launch(spec(slot_s=20.0, driver=too_fast, off_track_penalty_s=2.0))
    events = await until_run_end(host.events())
    penalties = [e for e in events if e["type"] == "penalty"]
    assert penalties and penalties[0]["seconds"] == 2.0
    first = penalties[0]["t"]
    held = [e for e in events if e["type"] == "telemetry" and first < e["t"] <= first + 2.0 - 1 / 15]
    assert len(held) >= 28
    assert all(e["host"] is None and e["penalty_remaining_ms"] > 0 for e in held)
    assert_protocol(events)


async def test_no_resets_ends_the_attempt_and_restarts_on_the_line(host: RaceHost) -> None:
    too_fast = DriverSpec("reference", reference_speed=4.0)
    await host.launch(spec(slot_s=20.0, driver=too_fast, resets="none"))
    events = await until_run_end(host.events())
    ended = [e for e in events if e["type"] == "attempt_ended"]
    assert len(ended) >= 2
    assert [e["lap"] for e in ended[:2]] == [1, 2]
    assert not any(e["type"] == "penalty" for e in events)
    assert_protocol(events)


async def test_sigkill_reports_host_error_and_fails_the_run() -> None:
    before = fd_count()
    host = RaceHost(1, realtime=True)
    await host.start(ROUTE, False)
    await host.launch(spec(slot_s=60.0))
    events = host.events()
    async for event in events:
        if isinstance(event, Telemetry):
            break
    pid = host.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    tail = await until_run_end(events)
    errors = [e for e in tail if e["type"] == "host_error"]
    assert len(errors) == 1 and "SIGKILL" in errors[0]["message"]
    assert tail[-1]["reason"] == "run_failed"
    with pytest.raises(RaceHostError):
        await host.set_speed_multiplier(1.5)
    await host.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222 (non-blocking) reaped: no zombie left behind
    assert fd_count() == before


async def test_realtime_ticks_at_15_hz() -> None:
    before = fd_count()
    host = RaceHost(1, realtime=True)
    await host.start(ROUTE, False)
    await host.launch(spec(slot_s=2.0))
    started = time.monotonic()
    events = await until_run_end(host.events())
    wall = time.monotonic() - started
    telemetry = [e for e in events if e["type"] == "telemetry"]
    assert len(telemetry) == 30
    # a real-time host never runs ahead of the wall clock (30 ticks = 29 periods after the first)
    assert wall >= 29 / 15 - 0.01
    stats = await host.stats()
    assert stats["ticks"] == 30
    assert stats["tick_jitter_p99_ms"] >= 0.0
    await host.close()
    assert fd_count() == before


async def test_close_mid_run_interrupts_it() -> None:
    host = RaceHost(1, realtime=True)
    await host.start(ROUTE, False)
    await host.launch(spec(slot_s=60.0, countdown_s=5.0))
    await host.close()
    events = [event.wire async for event in host.events()]
    assert events[-1]["type"] == "run_end" and events[-1]["reason"] == "interrupted"


async def test_a_host_that_cannot_start_says_why() -> None:
    before = fd_count()
    host = RaceHost(1, realtime=False)
    with pytest.raises(RaceHostError, match="no_such_track"):
        await host.start("no_such_track", False)
    with pytest.raises(RaceHostError, match="not running"):
        await host.launch(spec())
    await host.close()
    assert fd_count() == before
