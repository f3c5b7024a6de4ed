"""Real-track timing: debounce, crossings → laps, the timekeeper's buttons, the paused clock."""

from __future__ import annotations

import pytest

from race_server.races.lap_sensor import Debouncer, RunClock, TrackRun
from race_server.races.leaderboard import build_leaderboard
from race_server.races.timing import RaceTiming


def new_run(slot_s: float = 120.0, **race: object) -> tuple[RaceTiming, TrackRun]:
    timing = RaceTiming(n_sectors=1, **race)  # type: ignore[arg-type]
    return timing, TrackRun(timing.start_run(racer_id=7, run_id=70, slot_s=slot_s))


def test_debounce_drops_repeats_within_two_seconds() -> None:
    debounce = Debouncer()
    assert debounce.accept(10.0)
    assert not debounce.accept(10.01) and not debounce.accept(11.99)
    assert debounce.accept(12.0)
    assert not debounce.accept(5.0)  # out of order: older than the last crossing


def test_crossings_become_laps_and_the_leaderboard() -> None:
    timing, track = new_run()
    assert track.crossing(-1.0) == []  # the car put on the line before Go
    events = track.crossing(9.5)
    laps = [e for e in events if e["type"] == "lap"]
    assert len(laps) == 1 and laps[0]["time_ms"] == 9500 and laps[0]["valid"] and laps[0]["colour"] == "purple"
    assert track.crossing(9.6) == [] and track.crossing(11.4) == []  # the same crossing (wheels, body)
    second = [e for e in track.crossing(18.5) if e["type"] == "lap"]
    assert second[0]["lap"] == 2 and second[0]["time_ms"] == 9000
    rows = build_leaderboard(timing.laps, "best_lap", 1)
    assert rows[0].racer_id == 7 and rows[0].time_ms == 9000 and rows[0].laps == 2


def test_timekeeper_lap_off_track_undo_and_dnf() -> None:
    timing, track = new_run()
    track.lap(10.0)
    penalty = track.off_track(12.0, 1)
    assert penalty[0]["type"] == "penalty" and penalty[0]["off_track"] == 1
    assert track.off_track(12.5, -1) == [] and track.run.off_track == 0  # a mistaken off-track taken back
    assert track.off_track(13.0, -1) == [] and track.run.off_track == 0  # never below zero
    track.lap(14.0)  # a false lap (a hand on the button)
    assert [lap.time_ms for lap in timing.laps] == [10000, 4000]
    undone = track.undo_last_lap()
    assert undone is not None and undone.time_ms == 4000 and undone.lap_no == 2
    assert [lap.time_ms for lap in timing.laps] == [10000]
    assert timing.personal(7).lap_ms == 10000  # bests recomputed without the false lap
    laps = [e for e in track.lap(21.0) if e["type"] == "lap"]
    assert laps[0]["lap"] == 2 and laps[0]["time_ms"] == 11000  # the merged lap
    dnf = track.dnf(25.0)
    assert dnf[0]["valid"] is False and dnf[0]["reason"] == "run_failed" and dnf[0]["time_ms"] == 4000
    assert track.lap(26.0) == [] and track.undo_last_lap() is None


def test_resets_none_ends_the_attempt_and_the_next_crossing_restarts_it() -> None:
    _, track = new_run(resets="none")
    events = track.off_track(5.0, 1)
    assert [e["type"] for e in events] == ["lap", "attempt_ended"] and events[0]["valid"] is False
    assert track.crossing(8.0) == []  # car back on the line: a new attempt starts, no lap
    laps = [e for e in track.crossing(17.0) if e["type"] == "lap"]
    assert laps[0]["time_ms"] == 9000 and laps[0]["valid"]


def test_a_crossing_after_time_up_does_not_count() -> None:
    _, track = new_run(slot_s=10.0)
    events = track.crossing(10.5)
    assert events[0]["valid"] is False and events[0]["reason"] == "time_up"


def test_the_run_clock_stops_while_paused() -> None:
    clock = RunClock(go=100.0)
    assert clock.t(105.0) == 5.0
    clock.pause(105.0)
    assert clock.paused and clock.t(130.0) == 5.0
    clock.resume(130.0)
    assert clock.t(131.0) == pytest.approx(6.0)
