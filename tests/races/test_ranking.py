"""Ranking methods with minimum consecutive laps (SPEC "Evaluation and race rules"), hand-computed."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from race_server.races.leaderboard import build_leaderboard, format_gap_ms, format_time_ms, top_n
from race_server.races.ranking import RANKING_METHODS, Lap, best_window, rank_laps

_order = itertools.count(1)


def run(racer: int, run_id: int, *times: int | None) -> list[Lap]:
    """Laps in order; None is an invalid lap (e.g. an off-track with resets "none")."""
    return [
        Lap(racer, run_id, lap_no, time or 99_999, valid=time is not None, order=next(_order))
        for lap_no, time in enumerate(times, start=1)
    ]


# Racer 1: one run 10.0 12.0 [invalid] 9.0 11.0 10.0 -> chains (10, 12) and (9, 11, 10)
# Racer 2: 9.5 9.5 9.5 in one run
# Racer 3: a single 8.0 lap, then invalid, then 8.5 -> never 2 consecutive laps
LAPS = [
    *run(1, 1, 10_000, 12_000, None, 9_000, 11_000, 10_000),
    *run(2, 2, 9_500, 9_500, 9_500),
    *run(3, 3, 8_000, None, 8_500),
]


def test_best_lap_with_one_lap_minimum() -> None:
    ranked = rank_laps(LAPS, "best_lap", 1)
    assert [(r.racer_id, r.time_ms) for r in ranked] == [(3, 8_000), (1, 9_000), (2, 9_500)]
    assert [r.gap_ms for r in ranked] == [0, 1_000, 1_500]


def test_best_lap_needs_n_consecutive_laps_in_the_run() -> None:
    ranked = rank_laps(LAPS, "best_lap", 2)
    # racer 3's laps are broken by the invalid lap; racer 1's 9.0 lies in the 3-lap chain
    assert [(r.racer_id, r.time_ms) for r in ranked] == [(1, 9_000), (2, 9_500)]


def test_average_over_consecutive_laps() -> None:
    ranked = rank_laps(LAPS, "average", 3)
    # racer 1: only (9, 11, 10) is 3 long -> 10.0; racer 2: 9.5
    assert [(r.racer_id, r.time_ms) for r in ranked] == [(2, 9_500), (1, 10_000)]
    assert ranked[1].gap_ms == 500
    assert [lap.time_ms for lap in ranked[1].laps] == [9_000, 11_000, 10_000]


def test_average_of_two_does_not_bridge_the_invalid_lap() -> None:
    ranked = rank_laps(LAPS, "average", 2)
    # racer 1 windows: (10,12)=22 (9,11)=20 (11,10)=21; bridging 12|9 would give 21 but is not allowed
    assert [(r.racer_id, r.time_ms) for r in ranked] == [(2, 9_500), (1, 10_000)]


def test_total_time() -> None:
    ranked = rank_laps(LAPS, "total_time", 2)
    assert [(r.racer_id, r.time_ms) for r in ranked] == [(2, 19_000), (1, 20_000)]


def test_missing_lap_numbers_break_the_chain_and_runs_do_not_join() -> None:
    laps = [
        Lap(5, 1, 1, 10_000, True, 1),
        Lap(5, 1, 3, 10_000, True, 2),  # lap 2 was never recorded
        Lap(5, 2, 1, 10_000, True, 3),  # another run
    ]
    assert rank_laps(laps, "total_time", 2) == []
    assert best_window(laps[:2], "total_time", 2) is None


def test_ties_go_to_the_earlier_achievement_then_racer_id() -> None:
    laps = [Lap(7, 1, 1, 9_000, True, order=5), Lap(4, 2, 1, 9_000, True, order=6), Lap(9, 3, 1, 9_000, True, 5)]
    assert [r.racer_id for r in rank_laps(laps, "best_lap", 1)] == [7, 9, 4]
    # within one racer, the earlier of two equal windows is kept
    same = run(8, 1, 9_000, 9_000)
    assert rank_laps(same, "best_lap", 1)[0].achieved_at == same[0].order


def test_best_run_of_a_racer_ranks() -> None:
    laps = [*run(1, 1, 12_000, 12_000), *run(1, 2, 11_000, None), *run(1, 3, 11_500, 11_600)]
    ranked = rank_laps(laps, "total_time", 2)
    assert len(ranked) == 1 and ranked[0].run_id == 3 and ranked[0].time_ms == 23_100


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="allowed values: best_lap, average, total_time"):
        rank_laps(LAPS, "fastest", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_laps"):
        best_window(LAPS, "best_lap", 0)


def test_leaderboard_rows_and_formatting() -> None:
    laps = [
        Lap(1, 1, 1, 9_000, True, 1, off_track=1, collisions=0),
        Lap(1, 1, 2, 8_750, True, 2, off_track=0, collisions=2),
        Lap(1, 1, 3, 4_000, False, 3, off_track=1, reason="time_up"),
        *run(2, 2, 9_271),
        *run(3, 3, 10_000),
    ]
    rows = build_leaderboard(laps, "best_lap", 1, names={1: "ada", 2: "bob"})
    assert [(r.rank, r.racer_name, r.time_ms, r.gap_ms, r.off_track, r.collisions, r.laps) for r in rows] == [
        (1, "ada", 8_750, 0, 2, 2, 2),
        (2, "bob", 9_271, 521, 0, 0, 1),
        (3, None, 10_000, 1_250, 0, 0, 1),
    ]
    assert [r.racer_id for r in top_n(rows, 2)] == [1, 2]
    assert len(build_leaderboard(laps, "best_lap", 1, limit=1)) == 1
    assert format_time_ms(68_123) == "01:08.123" and format_gap_ms(521) == "+00:00.521"
    assert rows[0].to_dict()["racer_name"] == "ada"
    with pytest.raises(ValueError):
        top_n(rows, 0)


lap_times = st.lists(st.one_of(st.none(), st.integers(5_000, 60_000)), min_size=0, max_size=12)


@settings(max_examples=200, deadline=None)
@given(runs=st.lists(st.tuples(st.integers(1, 4), lap_times), max_size=6), n=st.integers(1, 4))
def test_ranking_invariants(runs: list[tuple[int, list[int | None]]], n: int) -> None:
    laps = [lap for run_id, (racer, times) in enumerate(runs, start=1) for lap in run(racer, run_id, *times)]
    for method in RANKING_METHODS:
        ranked = rank_laps(laps, method, n)
        assert [r.rank for r in ranked] == list(range(1, len(ranked) + 1))
        assert len({r.racer_id for r in ranked}) == len(ranked)
        assert all(a.time_ms <= b.time_ms for a, b in itertools.pairwise(ranked))
        for result in ranked:
            window = result.laps
            assert all(lap.valid for lap in window)
            assert len(window) == (1 if method == "best_lap" else n)
            assert [lap.lap_no for lap in window] == list(range(window[0].lap_no, window[0].lap_no + len(window)))
            total = sum(lap.time_ms for lap in window)
            assert result.time_ms == (total / n if method == "average" else total)
            assert result.gap_ms == result.time_ms - ranked[0].time_ms
        qualifying = {
            racer
            for racer, times in runs
            if any(all(t is not None for t in times[i : i + n]) for i in range(len(times) - n + 1))
        }
        assert {r.racer_id for r in ranked} == qualifying
    # average and total order racers identically for a fixed N
    assert [r.racer_id for r in rank_laps(laps, "average", n)] == [r.racer_id for r in rank_laps(laps, "total_time", n)]
