"""The feed turns race events into the broadcast state: pose, objects, penalties, the run's phases."""

from __future__ import annotations

import math

from race_server.overlay import BroadcastFeed
from race_server.sim.objects import Box


def test_telemetry_moves_the_car_and_its_objects() -> None:
    feed = BroadcastFeed(names={4: "Ada"})
    feed.apply({"type": "run_launched", "racer_id": 4, "run_id": 9, "countdown_s": 10, "slot_s": 120.0})
    assert feed.state.phase == "countdown" and feed.state.countdown == 10 and feed.state.racer_name == "Ada"
    assert feed.state.time_remaining_ms == 120_000
    feed.apply({"type": "run_started", "racer_id": 4, "run_id": 9, "slot_s": 120.0})
    assert feed.state.time_remaining_ms == 120_000 and feed.state.show_go
    state = feed.apply({
        "type": "telemetry", "racer_id": 4, "run_id": 9, "t": 2.0, "x": 1.0, "y": 2.0, "heading": 90.0,
        "speed": 2.5, "multiplier": 1.25, "lap": 1, "lap_time_ms": 2000, "time_remaining_ms": 118_000,
        "objects": [[3.0, 4.0, 0.5, 0.3, 0.2, 0.25, False], [5.0, 6.0, 1.0, 0.32, 0.2, 0.15, True]],
    })  # fmt: skip
    assert (state.x, state.y, state.speed, state.multiplier) == (1.0, 2.0, 2.5, 1.25)
    assert math.isclose(state.yaw, math.pi / 2) and not state.show_go
    assert state.objects == (Box(3.0, 4.0, 0.5, 0.3, 0.2, 0.25), Box(5.0, 6.0, 1.0, 0.32, 0.2, 0.15, is_bot=True))
    # telemetry without objects (a host that does not send them) keeps what was known
    assert feed.apply({"type": "telemetry", "racer_id": 4, "run_id": 9, "t": 2.1}).objects == state.objects


def test_a_failed_run_clears_the_picture_and_the_next_racer_starts_fresh() -> None:
    feed = BroadcastFeed(names={4: "Ada", 5: "Grace"})
    feed.apply({"type": "run_started", "racer_id": 4, "run_id": 9, "slot_s": 60.0})
    feed.apply({"type": "sector", "racer_id": 4, "run_id": 9, "sector": 0, "colour": "purple"})
    feed.apply({"type": "run_end", "racer_id": 4, "run_id": 9, "reason": "run_failed"})
    assert feed.state.phase == "idle"
    state = feed.apply({"type": "countdown", "racer_id": 5, "run_id": 10, "value": 3})
    assert state.racer_name == "Grace" and state.sector_colours == (None, None, None) and state.countdown == 3
