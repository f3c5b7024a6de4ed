"""Track loading, console selection and geometry, checked against real DeepRacer simtraces."""

from __future__ import annotations

import io
import json
import math
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point

from race_server.sim.simtrace import SimtraceRow, read_simtrace
from race_server.sim.tracks import (
    DATA_DIR,
    Track,
    list_routes,
    list_tracks,
    load_route_rows,
    load_track,
    resolve_track,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "deepracer-formats"
DRFC_TRACE = FIXTURES / "drfc-run-v4-discrete" / "training-simtrace" / "0-iteration.csv"
DROA_BUNDLE = FIXTURES / "deepracer-on-aws-logs-v6" / "sample-droa-solution-logs.tar.gz"
SAMPLE_ROUTES = ["reinvent_base", "Spain_track", "2022_reinvent_champ_cw", "Straight_track",
                 "hamption_pro", "Albert", "reInvent2019_wide"]  # fmt: skip


def _droa_traces(kind: str) -> list[tuple[str, list[SimtraceRow]]]:
    with tarfile.open(DROA_BUNDLE, "r:gz") as tar:
        out = []
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if member.isfile() and f"/{kind}-simtrace/" in member.name:
                raw = tar.extractfile(member)
                assert raw is not None
                with io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
                    out.append((member.name, read_simtrace(text)))
    assert out, f"no {kind} simtrace in {DROA_BUNDLE.name}"
    return out


# --- data and loading ---------------------------------------------------------------------


def test_all_127_route_files_ship_with_licences() -> None:
    assert len(list_routes()) == 127
    for name in ("tracks.json", "README.md", "LICENSE-deepracer-simapp.txt",
                 "LICENSE-deepracer-on-aws.txt", "NOTICE-deepracer-on-aws.txt"):  # fmt: skip
        assert (DATA_DIR / name).is_file(), name


@pytest.mark.parametrize("route_id", list_routes())
def test_every_route_loads_both_ways(route_id: str) -> None:
    rows = load_route_rows(route_id)
    fwd = Track(route_id, rows, reverse=False)
    rev = Track(route_id, rows, reverse=True)
    for track in (fwd, rev):
        assert track.length > 1.0
        assert track.road_polygon.is_valid
        assert track.road_polygon.area > 0.5 * track.length * track.width
        assert len(track.waypoints) == len(rows)  # raw rows, repeats and closing row kept
        cum = np.concatenate(([0.0], np.cumsum(np.hypot(*np.diff(track.waypoints, axis=0).T))))
        for i, (x, y) in enumerate(track.waypoints):
            pos = track.locate(x, y)
            expected = 0.0 if track.is_loop and i == len(cum) - 1 else cum[i]
            assert pos.projection_distance == pytest.approx(expected, abs=1e-9)
            assert pos.distance_from_center == pytest.approx(0.0, abs=1e-9)
            assert 0.0 < pos.track_width < 3.0
        # Mid-segment the pair is that segment's raw rows, so indices after a repeat stay raw.
        for k in map(int, np.flatnonzero(np.diff(cum) > 0)):
            pos = track.locate(*track.pose_at((cum[k] + cum[k + 1]) / 2)[:2])
            assert pos.closest_waypoints == (k, k + 1)
        # The route's own centre line lies on the road (open ends sit on the polygon boundary).
        inner_rows = track.waypoints[1:-1] if not track.is_loop else track.waypoints
        assert track.contains(inner_rows).all()
    assert rev.length == pytest.approx(fwd.length, rel=1e-12)
    assert np.array_equal(rev.waypoints, rows[::-1, 0:2])
    assert rev.is_clockwise != fwd.is_clockwise
    assert rev.road_polygon.equals(fwd.road_polygon)


def test_reinvent_base_matches_simtrace_track_len() -> None:
    assert load_track("reinvent_base").length == pytest.approx(17.709159380834848, abs=1e-9)
    assert load_track("Spain_track").length == pytest.approx(59.99785047027138, abs=1e-9)


def test_repeated_rows_are_kept_and_indexed() -> None:
    spain = load_track("Spain_track")
    rows = load_route_rows("Spain_track")
    repeats = [i for i in range(1, len(rows) - 1) if np.array_equal(rows[i], rows[i + 1])]
    assert repeats, "Spain_track has a repeated row mid-lap"
    k = repeats[0]
    # A point just past the repeated row: bisect_right skips both equal arc lengths.
    x, y, _ = spain.pose_at(float(np.sum(np.hypot(*np.diff(rows[: k + 1, 0:2], axis=0).T))) + 1e-4)
    assert spain.locate(x, y).closest_waypoints == (k + 1, k + 2)


def test_open_route_does_not_wrap() -> None:
    track = load_track("Straight_track")
    assert not track.is_loop
    end = track.locate(*track.waypoints[-1])
    assert end.progress == pytest.approx(100.0)
    assert end.closest_waypoints == (len(track.waypoints) - 2, len(track.waypoints) - 1)
    beyond = track.locate(track.waypoints[-1][0] + 5.0, track.waypoints[-1][1])
    assert beyond.progress == pytest.approx(100.0)
    x, y, _ = track.pose_at(track.length + 3.0)
    assert (x, y) == pytest.approx(tuple(track.waypoints[-1]))
    start = track.locate(*track.waypoints[0])
    assert start.progress == 0.0 and start.closest_waypoints == (0, 1)


def test_loop_wraps_at_the_closing_row() -> None:
    track = load_track("reinvent_base")
    n = len(track.waypoints)
    x, y, _ = track.pose_at(track.length - 1e-6)
    assert track.locate(x, y).closest_waypoints == (n - 2, n - 1)
    x, y, _ = track.pose_at(track.length + 0.05)  # distance wraps past the start line
    pos = track.locate(x, y)
    assert pos.projection_distance == pytest.approx(0.05)
    assert pos.closest_waypoints == (0, 1)


# --- console selection --------------------------------------------------------------------


def test_resolve_uses_direction_files_when_present() -> None:
    assert resolve_track("2022_reinvent_champ", "CLOCKWISE") == ("2022_reinvent_champ_cw", False)
    assert resolve_track("2024_reinvent_champ", "COUNTER_CLOCKWISE") == (
        "2024_reinvent_champ_ccw",
        False,
    )
    assert resolve_track("reInvent2019_wide", "CLOCKWISE") == ("reInvent2019_wide_cw", False)


def test_resolve_base_file_reversed_only_when_winding_differs() -> None:
    assert resolve_track("reinvent_base", "COUNTER_CLOCKWISE") == ("reinvent_base", False)
    assert resolve_track("Spain_track", "CLOCKWISE") == ("Spain_track", False)
    assert resolve_track("Albert", "CLOCKWISE") == ("Albert", False)


def test_every_enabled_direction_resolves_to_that_winding() -> None:
    catalogue = json.loads((DATA_DIR / "tracks.json").read_text(encoding="utf-8"))["tracks"]
    assert len(list_tracks()) == len(catalogue)
    for entry in catalogue:
        for direction in entry["enabledDirections"]:
            route_id, reverse = resolve_track(entry["trackId"], direction)
            track = load_track(route_id, reverse)
            assert track.is_clockwise == (direction == "CLOCKWISE"), (entry["trackId"], direction)


def test_refused_direction_names_field_and_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"direction.*'CLOCKWISE'.*COUNTER_CLOCKWISE"):
        resolve_track("reinvent_base", "CLOCKWISE")
    with pytest.raises(ValueError, match=r"direction.*allowed values: CLOCKWISE, COUNTER"):
        resolve_track("2022_reinvent_champ", "SIDEWAYS")


def test_unknown_ids_name_field_and_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"track_id: unknown track 'nope'.*reinvent_base"):
        resolve_track("nope", "CLOCKWISE")
    with pytest.raises(ValueError, match=r"route_id: unknown route 'nope'.*Straight_track"):
        load_track("nope")
    with pytest.raises(ValueError, match="route_id"):
        load_route_rows("../tracks")


def test_lane_lateral_points_at_the_inner_border() -> None:
    for route_id, reverse in (("reinvent_base", False), ("reinvent_base", True),
                              ("Spain_track", False)):  # fmt: skip
        track = load_track(route_id, reverse)
        inside = track.lane_lateral("inside")
        assert abs(inside) == pytest.approx(track.width / 4)
        assert track.lane_lateral("outside") == -inside
        x, y, _ = track.pose_at(track.length * 0.3, inside)
        inner = LineString(track.inner_border).distance(Point(x, y))
        outer = LineString(track.outer_border).distance(Point(x, y))
        assert inner < outer
    with pytest.raises(ValueError, match=r"lane.*inside, outside"):
        load_track("reinvent_base").lane_lateral("middle")


def test_sectors_and_start_line() -> None:
    track = load_track("reinvent_base", n_sectors=4)
    assert track.sector_bounds() == pytest.approx(list(np.arange(5) * track.length / 4))
    sectors = [track.locate(*track.pose_at(d)[:2]).sector for d in np.linspace(0.01, 17.7, 50)]
    assert sectors == sorted(sectors) and set(sectors) == {0, 1, 2, 3}
    assert load_track("reinvent_base").n_sectors == 3
    a, b = track.start_line
    assert a == tuple(track.inner_border[0]) and b == tuple(track.outer_border[0])


def test_inner_and_outer_lanes_lie_between_centre_and_borders() -> None:
    track = load_track("Spain_track")
    assert np.allclose(track.inner_lane, (track.waypoints + track.inner_border) / 2)
    assert np.allclose(track.outer_lane, (track.waypoints + track.outer_border) / 2)
    assert track.contains(track.inner_lane).all() and track.contains(track.outer_lane).all()


def test_contains_is_strict_and_excludes_the_infield() -> None:
    track = load_track("reinvent_base")
    pts = np.vstack((track.waypoints[:3], track.inner_border[:1], [[100.0, 100.0]],
                     [track.inner_border.mean(axis=0)]))  # fmt: skip
    assert track.contains(pts).tolist() == [True, True, True, False, False, False]


# --- properties ---------------------------------------------------------------------------

routes = st.sampled_from(SAMPLE_ROUTES)


@settings(max_examples=300, deadline=None)
@given(route=routes, reverse=st.booleans(), frac=st.floats(0.0, 1.0))
def test_pose_at_round_trips_through_locate(route: str, reverse: bool, frac: float) -> None:
    track = load_track(route, reverse)
    d = frac * track.length
    pos = track.locate(*track.pose_at(d)[:2])
    diff = pos.projection_distance - d
    if track.is_loop:
        diff = (diff + track.length / 2) % track.length - track.length / 2
    assert diff == pytest.approx(0.0, abs=1e-9)
    assert pos.distance_from_center == pytest.approx(0.0, abs=1e-9)
    assert pos.progress == pytest.approx(100 * pos.projection_distance / track.length)


@settings(max_examples=300, deadline=None)
@given(route=routes, reverse=st.booleans(), frac=st.floats(0.0, 1.0),
       side=st.sampled_from([-1.0, 1.0]), amount=st.floats(0.1, 0.35))  # fmt: skip
def test_lateral_offset_sets_side_and_distance(
    route: str, reverse: bool, frac: float, side: float, amount: float
) -> None:
    track = load_track(route, reverse)
    lateral = side * max(amount * track.width, 0.1)
    x, y, _ = track.pose_at(frac * track.length, lateral)
    pos = track.locate(x, y)
    assert pos.is_left_of_center == (lateral > 0)
    # Inside a bend another part of the centre line can be nearer than the offset's foot.
    assert pos.distance_from_center <= abs(lateral) + 1e-9
    centre = LineString(track.waypoints)
    assert pos.distance_from_center == pytest.approx(centre.distance(Point(x, y)), abs=1e-9)
    flipped = load_track(route, not reverse).locate(x, y)
    assert flipped.is_left_of_center != pos.is_left_of_center


@settings(max_examples=200, deadline=None)
@given(lateral=st.floats(-0.5, 0.5), frac=st.floats(0.0, 1.0))
def test_straight_track_lateral_distance_is_exact(lateral: float, frac: float) -> None:
    track = load_track("Straight_track")
    pos = track.locate(*track.pose_at(frac * track.length, lateral)[:2])
    assert pos.distance_from_center == pytest.approx(abs(lateral), abs=1e-9)


@settings(max_examples=300, deadline=None)
@given(route=routes, reverse=st.booleans(), u=st.floats(0, 1), v=st.floats(0, 1))
def test_locate_agrees_with_shapely_anywhere(route: str, reverse: bool, u: float, v: float) -> None:
    """Arbitrary points, including far off the road (outside the grid index)."""
    track = load_track(route, reverse)
    lo = track.waypoints.min(axis=0) - 3.0
    hi = track.waypoints.max(axis=0) + 3.0
    x, y = lo + (hi - lo) * np.array([u, v])
    pos = track.locate(x, y)
    p = Point(x, y)
    centre = LineString(track.waypoints)
    assert pos.distance_from_center == pytest.approx(centre.distance(p), abs=1e-9)
    expected = centre.project(p)
    foot = centre.interpolate(pos.projection_distance)
    # Equidistant feet are legitimate ties; then both feet are equally near.
    assert pos.projection_distance == pytest.approx(expected, abs=1e-9) or foot.distance(p) == pytest.approx(
        centre.distance(p), abs=1e-9
    )
    inner = LineString(track.inner_border)
    outer = LineString(track.outer_border)
    width = inner.interpolate(inner.project(p)).distance(outer.interpolate(outer.project(p)))
    assert pos.track_width == pytest.approx(width, abs=1e-9)
    assert pos.is_left_of_center == ((inner.distance(p) < outer.distance(p)) != track.is_clockwise)
    assert -180.0 < pos.heading <= 180.0
    assert track.contains(np.array([[x, y]]))[0] == track.road_polygon.contains(p)


# --- the real simulator's traces ----------------------------------------------------------


def _episode_progress(position: float, start: float, prev: float) -> float:
    """SPEC's episode progress: position minus start, +100 when negative, ±100 on a jump > 50."""
    progress = position - start
    if progress < 0:
        progress += 100.0
    if prev - progress > 50:
        progress += 100.0
    elif progress - prev > 50:
        progress -= 100.0
    return min(progress, 100.0)


def _check_trace(track: Track, rows: list[SimtraceRow], start_of: Callable[[int], float]) -> None:
    """Every row's progress and closest_waypoint recomputed from its X, Y.

    The start offset comes from the episode number, not the trace: training starts round-robin
    5 % further each episode, evaluation trials at the start line. The first row cannot supply it:
    X, Y is the reference point 0.14 m ahead of the car, and after an off-track the 'prepare' row
    still holds the previous episode's final position (Spain training episodes 16 and 17).
    All statuses (prepare, in_progress, pause, lap_complete, off_track) are checked.
    """
    assert rows
    prev_episode = None
    prev = 0.0
    for row in rows:
        assert row.track_len == pytest.approx(track.length, abs=1e-9)
        if row.episode != prev_episode:
            prev, prev_episode = 0.0, row.episode
        pos = track.locate(row.x, row.y)
        progress = _episode_progress(pos.progress, start_of(row.episode), prev)
        where = f"episode {row.episode} step {row.steps} ({row.episode_status})"
        assert progress == pytest.approx(row.progress, abs=1e-3), where
        prv, nxt = pos.closest_waypoints
        d_prv = math.dist((row.x, row.y), track.waypoints[prv])
        d_nxt = math.dist((row.x, row.y), track.waypoints[nxt])
        assert (prv if d_prv < d_nxt else nxt) == row.closest_waypoint, where
        prev = progress


def _round_robin(episode: int) -> float:
    return float(5 * episode % 100)


def test_reinvent_base_training_simtrace_reproduced() -> None:
    rows = read_simtrace(DRFC_TRACE)
    assert len(rows) == 529 and {r.episode for r in rows} == set(range(20))
    # track_len 17.70916 is reinvent_base's centre line (its carpet/concrete/wood twins share the
    # geometry); the trace progresses with the stored row order, so not reversed.
    _check_trace(load_track("reinvent_base"), rows, _round_robin)


def test_spain_evaluation_simtrace_reproduced() -> None:
    ((_, rows),) = _droa_traces("evaluation")
    statuses = {r.episode_status for r in rows}
    assert {"prepare", "in_progress", "pause", "lap_complete", "off_track"} <= statuses
    # Evaluation trials all start at the start line.
    _check_trace(load_track("Spain_track"), rows, lambda episode: 0.0)


def test_spain_training_simtraces_reproduced() -> None:
    traces = _droa_traces("training")
    assert len(traces) == 2
    for _, rows in traces:
        _check_trace(load_track("Spain_track"), rows, _round_robin)


def test_reversed_spain_does_not_reproduce_the_trace() -> None:
    """Negative control: the check above can fail (the trace used the stored direction)."""
    ((_, rows),) = _droa_traces("evaluation")
    with pytest.raises(AssertionError):
        _check_trace(load_track("Spain_track", reverse=True), rows, lambda episode: 0.0)


# --- speed --------------------------------------------------------------------------------


def _on_road_points(track: Track, n: int) -> Iterator[tuple[float, float]]:
    rng = np.random.default_rng(7)
    for d, lat in zip(rng.uniform(0, track.length, n), rng.uniform(-0.4, 0.4, n), strict=True):
        x, y, _ = track.pose_at(d, lat * track.width)
        yield x, y
