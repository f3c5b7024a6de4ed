"""Overlay pixel tests: sector colours through a scripted session, countdown, GO, penalties, flag, replay."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from PIL import Image

from race_server.overlay import BroadcastFeed, BroadcastState, Overlay
from race_server.overlay.compose import FLAG_DARK, FLAG_LIGHT, GO_GREEN, PENALTY_RED, REPLAY_RED, Box2
from race_server.overlay.state import SectorColour
from race_server.overlay.trackmap import COLOURS
from race_server.races.timing import RaceTiming
from race_server.sim.tracks import load_track
from tests.conftest import artifact_path

GREY = (90, 110, 90)


@pytest.fixture(scope="module")
def overlay() -> Overlay:
    return Overlay(load_track("reinvent_base"))


def blank() -> np.ndarray:
    frame = np.empty((720, 1280, 4), dtype=np.uint8)
    frame[...] = (*GREY, 255)
    return frame


def count(frame: np.ndarray, box: Box2, rgb: tuple[int, int, int], tol: int = 6) -> int:
    region = frame[box.y : box.y + box.h, box.x : box.x + box.w, :3].astype(int)
    return int(np.all(np.abs(region - np.array(rgb)) <= tol, axis=-1).sum())


def sector_pixel(overlay: Overlay, frame: np.ndarray, sector: int) -> tuple[int, int, int]:
    line = overlay.track_map.sectors[sector]
    x, y = line[len(line) // 2]
    r, g, b = frame[overlay.map.y + round(y), overlay.map.x + round(x), :3]
    return int(r), int(g), int(b)


def assert_sectors(overlay: Overlay, state: BroadcastState, expected: list[SectorColour | None]) -> None:
    frame = overlay.draw(state, blank())
    for sector, colour in enumerate(expected):
        got = np.array(sector_pixel(overlay, frame, sector))
        want = np.array(COLOURS[colour])
        assert np.all(np.abs(got - want) <= 3), f"sector {sector}: {tuple(got)} is not {colour} {tuple(want)}"


def drive_lap(feed: BroadcastFeed, run: Any, start: float, sectors_s: list[float]) -> float:
    t = start
    for index, seconds in enumerate(sectors_s):
        t += seconds
        events = run.sector_crossed(index, t) if index < len(sectors_s) - 1 else run.lap_completed(t)
        for event in events:
            feed.apply(event)
    return t


def test_sector_colours_follow_the_session_and_personal_bests(overlay: Overlay) -> None:
    timing = RaceTiming(n_sectors=3)
    feed = BroadcastFeed(names={1: "Ada", 2: "Grace"})
    feed.apply({"type": "run_started", "racer_id": 1, "run_id": 10, "slot_s": 180.0})
    assert_sectors(overlay, feed.state, [None, None, None])  # nothing driven yet: grey
    ada = timing.start_run(1, 10, 180.0)
    drive_lap(feed, ada, 0.0, [10.0, 10.0, 10.0])
    assert_sectors(overlay, feed.state, ["purple", "purple", "purple"])  # the first times set are purple

    feed.apply({"type": "run_started", "racer_id": 2, "run_id": 11, "slot_s": 180.0})
    assert_sectors(overlay, feed.state, [None, None, None])  # a new racer starts grey
    grace = timing.start_run(2, 11, 180.0)
    end = drive_lap(feed, grace, 0.0, [12.0, 9.0, 10.0])
    # slower than Ada but Grace's first: green; faster than the session: purple; a tie is not a best
    assert_sectors(overlay, feed.state, ["green", "purple", "green"])
    drive_lap(feed, grace, end, [13.0, 8.5, 11.0])
    # slower than her own best: yellow; a new session best: purple
    assert_sectors(overlay, feed.state, ["yellow", "purple", "yellow"])
    Image.fromarray(overlay.draw(feed.state, blank())[..., :3].copy()).save(artifact_path("overlay_sectors.png"))


def test_countdown_go_penalty_flag_and_replay_appear_at_their_moments(overlay: Overlay) -> None:
    feed = BroadcastFeed(names={7: "Ada"})
    base = {"racer_id": 7, "run_id": 3, "race_id": 1}

    def frame_for(event: dict[str, Any]) -> np.ndarray:
        return overlay.draw(feed.apply({**base, **event}), blank())

    white = (255, 255, 255)
    seen: list[np.ndarray] = []
    for value in range(10, 0, -1):
        frame = frame_for({"type": "countdown", "value": value, "t": -float(value)})
        assert count(frame, overlay.centre, white, 2) > 400, f"countdown {value} is not shown"
        assert count(frame, overlay.centre, GO_GREEN, 2) == 0
        seen.append(
            frame[overlay.centre.y : overlay.centre.y + overlay.centre.h, overlay.centre.x :][:, : overlay.centre.w]
        )
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(seen))  # each number differs
    frame = frame_for({"type": "run_started", "slot_s": 60.0, "t": 0.0})
    assert count(frame, overlay.centre, GO_GREEN, 2) > 400  # GO at Go
    assert count(frame, overlay.flag, FLAG_DARK, 4) == 0
    telemetry = {
        "type": "telemetry",
        "x": 0.5,
        "y": 0.5,
        "heading": 0.0,
        "speed": 1.5,
        "lap": 1,
        "lap_time_ms": 1500,
        "time_remaining_ms": 58500,
        "penalty_remaining_ms": 0,
        "resets": 0,
        "off_track": 0,
        "collisions": 0,
    }
    frame = frame_for({**telemetry, "t": 1.5})
    assert count(frame, overlay.centre, GO_GREEN, 2) == 0  # GO is gone a second later
    assert count(frame, overlay.centre, white, 2) < 50
    feed.apply(
        {**base, "type": "penalty", "kind": "off_track", "seconds": 3.0, "resets": 1, "off_track": 1, "collisions": 0}
    )
    frame = frame_for({**telemetry, "t": 2.0, "penalty_remaining_ms": 2500, "resets": 1, "off_track": 1})
    assert count(frame, overlay.notice, PENALTY_RED, 30) > 5000  # the penalty notice while held
    assert feed.state.penalty == "OFF TRACK +3 s"
    frame = frame_for({**telemetry, "t": 5.0, "penalty_remaining_ms": 0, "resets": 1, "off_track": 1})
    assert count(frame, overlay.notice, PENALTY_RED, 30) == 0
    frame = frame_for({"type": "run_end", "reason": "time_up", "t": 60.0})
    assert count(frame, overlay.flag, FLAG_DARK, 4) > 3000 and count(frame, overlay.flag, FLAG_LIGHT, 4) > 3000
    Image.fromarray(frame[..., :3].copy()).save(artifact_path("overlay_flag.png"))
    frame = frame_for({"type": "replay_started"})
    assert count(frame, overlay.flag, FLAG_DARK, 4) == 0
    assert count(frame, overlay.badge, REPLAY_RED, 30) > 3000
    frame = frame_for({"type": "replay_ended"})
    assert count(frame, overlay.badge, REPLAY_RED, 30) == 0


def test_between_runs_shows_coming_up_and_the_leaderboard(overlay: Overlay) -> None:
    feed = BroadcastFeed(names={1: "Ada", 2: "Grace"})
    feed.apply(
        {
            "type": "leaderboard",
            "rows": [
                {"rank": 1, "racer_id": 1, "time_ms": 9876.0, "gap_ms": 0.0},
                {"rank": 2, "racer_id": 2, "racer_name": "Grace H", "time_ms": 10123.0, "gap_ms": 247.0},
            ],
        }
    )
    state = feed.apply({"type": "up_next", "racer_id": 2})
    assert state.coming_up == "Grace" and [r.name for r in state.leaderboard] == ["Ada", "Grace H"]
    frame = overlay.draw(state, blank())
    assert count(frame, overlay.board, (255, 255, 255), 2) > 1000
    assert count(frame, overlay.racer, (255, 255, 255), 2) == 0  # no racer panel between runs


def test_overlay_refuses_a_frame_of_another_size(overlay: Overlay) -> None:
    with pytest.raises(ValueError, match="1280x720"):
        overlay.draw(BroadcastState(), np.zeros((480, 640, 4), np.uint8))
