"""Run timing: sector colours across racers, penalties in lap time, interpolated crossings, slots."""

from __future__ import annotations

from typing import Any

import pytest

from race_server.protocol import validate_server_message
from race_server.races.leaderboard import build_leaderboard
from race_server.races.ranking import Lap
from race_server.races.timing import RaceTiming, RunTiming, TimingError


def drive_lap(run: RunTiming, start: float, sectors: tuple[float, float, float]) -> list[dict[str, Any]]:
    t = start
    events: list[dict[str, Any]] = []
    for index, duration in enumerate(sectors[:2]):
        t += duration
        events += run.sector_crossed(index, t)
    events += run.lap_completed(t + sectors[2])
    return events


def colours(events: list[dict[str, Any]]) -> list[str]:
    return [e["colour"] for e in events if e["type"] == "sector"]


def test_sector_colours_follow_the_spec_rule_across_two_racers() -> None:
    race = RaceTiming()
    a = race.start_run(racer_id=1, run_id=1, slot_s=180)
    # first sectors ever driven are the session's best
    assert colours(drive_lap(a, 0.0, (3.0, 4.0, 5.0))) == ["purple", "purple", "purple"]
    # faster in sector 1 only: purple there; slower elsewhere: yellow
    assert colours(drive_lap(a, 12.0, (3.5, 3.5, 5.5))) == ["yellow", "purple", "yellow"]
    b = race.start_run(racer_id=2, run_id=2, slot_s=180)
    # racer 2's first lap: personal bests (green) where not session bests, purple where faster than all
    assert colours(drive_lap(b, 0.0, (3.2, 3.8, 4.9))) == ["green", "green", "purple"]
    # racer 2 improves sector 0 but not past racer 1: green; equal to the session best: not purple
    assert colours(drive_lap(b, 11.9, (3.1, 3.5, 5.0))) == ["green", "green", "yellow"]
    assert race.session.sector_ms == [3000, 3500, 4900]
    assert race.personal(2).sector_ms == [3100, 3500, 4900]


def test_lap_colours_and_bests() -> None:
    race = RaceTiming()
    a = race.start_run(1, 1, slot_s=180)
    laps = [e for e in drive_lap(a, 0.0, (3, 4, 5)) if e["type"] == "lap"]
    laps += [e for e in drive_lap(a, 12.0, (3, 4, 6)) if e["type"] == "lap"]
    b = race.start_run(2, 2, slot_s=180)
    laps += [e for e in drive_lap(b, 0.0, (3, 4, 5.5)) if e["type"] == "lap"]
    laps += [e for e in drive_lap(b, 12.5, (3, 4, 5.2)) if e["type"] == "lap"]
    assert [(e["racer_id"], e["time_ms"], e["colour"]) for e in laps] == [
        (1, 12000, "purple"),
        (1, 13000, "yellow"),
        (2, 12500, "green"),
        (2, 12200, "green"),
    ]
    assert a.best_lap_ms() == 12000 and b.best_lap_ms() == 12200 and race.session.lap_ms == 12000


def test_interpolated_crossing_times_give_sub_step_lap_times() -> None:
    race = RaceTiming()
    run = race.start_run(1, 1, slot_s=180, go_t=0.0)
    # 15 Hz steps: the line was crossed 40% into the step from 8.6 s to 8.6667 s
    crossing = 8.6 + 0.4 / 15
    run.sector_crossed(0, 2.7333)
    run.sector_crossed(1, 5.9)
    events = run.lap_completed(crossing)
    lap = events[-1]
    assert lap["time_ms"] == 8627  # not a multiple of the 66.7 ms step
    assert sum(lap["sectors_ms"]) == lap["time_ms"] and lap["sectors_ms"] == [2733, 3167, 2727]


def test_penalties_hold_the_car_and_count_in_lap_time() -> None:
    race = RaceTiming(off_track_penalty_s=3.0, collision_penalty_s=5.0)
    run = race.start_run(1, 1, slot_s=180)
    run.sector_crossed(0, 4.0)
    events = run.reset("off_track", 5.0)
    assert events == [
        {"type": "penalty", "racer_id": 1, "run_id": 1, "kind": "off_track", "seconds": 3.0, "resets": 1,
         "off_track": 1, "collisions": 0}
    ]  # fmt: skip
    assert run.penalty_remaining_ms(6.0) == 2000
    run.reset("crash", 9.0)
    assert run.penalty_remaining_ms(9.0) == 5000
    assert run.status(10.0)["lap_time_ms"] == 10000  # the clock ran through both holds
    run.sector_crossed(1, 16.0)
    lap = run.lap_completed(20.0)[-1]
    assert lap["time_ms"] == 20000 and lap["valid"] and lap["colour"] == "purple"
    assert (lap["off_track"], lap["collisions"], lap["resets"]) == (1, 1, 2)
    assert run.status(20.0)["resets"] == 2
    # counts per lap start again
    assert run.lap_completed(30.0)[-1]["resets"] == 0


def test_back_to_back_penalties_add_up() -> None:
    race = RaceTiming(off_track_penalty_s=3.0)
    run = race.start_run(1, 1, slot_s=180)
    run.reset("reversed", 1.0)
    run.reset("immobilised", 2.0)
    assert run.penalty_remaining_ms(2.0) == 5000  # held until 1 + 3 + 3
    assert run.off_track == 0 and run.resets == 2


def test_resets_none_ends_the_attempt_with_an_invalid_lap() -> None:
    race = RaceTiming(resets="none")
    run = race.start_run(1, 1, slot_s=180)
    drive_lap(run, 0.0, (3, 4, 5))
    events = run.reset("off_track", 15.0)
    assert [e["type"] for e in events] == ["lap", "attempt_ended"]
    assert events[0]["valid"] is False and events[0]["colour"] == "red" and events[0]["reason"] == "off_track"
    assert events[0]["time_ms"] == 3000 and events[0]["lap"] == 2
    with pytest.raises(TimingError, match="attempt is over"):
        run.lap_completed(16.0)
    run.restart_attempt(20.0)
    lap = drive_lap(run, 20.0, (3, 4, 5))[-1]
    assert lap["lap"] == 3 and lap["time_ms"] == 12000
    # the invalid lap 2 breaks the chain: laps 1 and 3 are not consecutive
    assert build_leaderboard(race.laps, "total_time", 2) == []
    assert [row.time_ms for row in build_leaderboard(race.laps, "best_lap", 1)] == [12000]


def test_time_remaining_and_the_end_of_the_slot() -> None:
    race = RaceTiming()
    run = race.start_run(1, 1, slot_s=60, go_t=2.0)
    assert run.time_remaining_ms(0.0) == 60000  # the clock starts at Go
    assert run.time_remaining_ms(32.5) == 29500
    drive_lap(run, 2.0, (10, 10, 10))
    events = run.lap_completed(62.5)  # crossed after the flag: does not count
    assert [(e["type"], e["valid"], e["reason"], e["time_ms"]) for e in events] == [("lap", False, "time_up", 30000)]
    assert run.finished and run.time_remaining_ms(70.0) == 0
    assert run.finish(70.0, "time_up") == []
    with pytest.raises(TimingError, match="finished"):
        run.sector_crossed(0, 71.0)


def test_finish_records_the_lap_in_progress_as_invalid() -> None:
    race = RaceTiming()
    run = race.start_run(1, 1, slot_s=60)
    run.sector_crossed(0, 5.0)
    events = run.finish(7.5, "run_failed")
    assert events[0]["valid"] is False and events[0]["reason"] == "run_failed" and events[0]["time_ms"] == 7500


def test_relaunch_keeps_completed_laps_and_personal_bests() -> None:
    race = RaceTiming()
    first = race.start_run(1, run_id=1, slot_s=180)
    drive_lap(first, 0.0, (3, 4, 5))
    first.sector_crossed(0, 15.0)
    first.finish(16.0, "run_failed")
    second = race.start_run(1, run_id=2, slot_s=180, go_t=0.0)
    assert second.time_remaining_ms(0.0) == 180000  # a fresh full slot
    assert second.best_lap_ms() == 12000
    events = drive_lap(second, 0.0, (3.5, 3.5, 5.5))
    assert colours(events) == ["yellow", "purple", "yellow"]
    assert events[-1]["colour"] == "yellow"
    rows = build_leaderboard(race.laps, "best_lap", 1)
    assert [(row.racer_id, row.time_ms, row.run_id) for row in rows] == [(1, 12000, 1)]


def test_out_of_order_crossings_are_ignored() -> None:
    race = RaceTiming()
    run = race.start_run(1, 1, slot_s=180)
    assert run.sector_crossed(1, 1.0) == []
    assert len(run.sector_crossed(0, 2.0)) == 1
    assert run.sector_crossed(0, 2.5) == []  # the same boundary again after a reset
    assert run.sector_crossed(2, 3.0) == []  # the last sector ends at the finish line


def test_clear_and_restore() -> None:
    race = RaceTiming()
    run = race.start_run(1, 1, slot_s=180)
    drive_lap(run, 0.0, (3, 4, 5))
    restored = RaceTiming(laps=race.laps)
    assert restored.session.sector_ms == [3000, 4000, 5000] and restored.session.lap_ms == 12000
    assert restored.next_order() == 2
    race.clear()
    assert race.laps == [] and race.session.lap_ms is None and race.personal(1).lap_ms is None
    assert RaceTiming(laps=[Lap(1, 1, 1, 5000, False, 1)]).session.lap_ms is None


def test_every_timing_event_is_a_protocol_message() -> None:
    race = RaceTiming(resets="none")
    run = race.start_run(1, 1, slot_s=180)
    events = drive_lap(run, 0.0, (3, 4, 5)) + run.reset("crash", 13.0)
    unlimited = RaceTiming().start_run(2, 2, slot_s=180)
    events += unlimited.reset("off_track", 1.0)
    for event in events:
        validate_server_message(event)
    validate_server_message({"type": "telemetry", "t": 3.0, "speed": 1.2, "progress": 20.0, **unlimited.status(3.0)})


def test_bad_calls() -> None:
    race = RaceTiming()
    run = race.start_run(1, 1, slot_s=180)
    with pytest.raises(TimingError, match="kind"):
        run.reset("flat_tyre", 1.0)  # type: ignore[arg-type]
    with pytest.raises(TimingError, match="still going"):
        run.restart_attempt(1.0)
    with pytest.raises(ValueError, match="n_sectors"):
        RaceTiming(n_sectors=0)
