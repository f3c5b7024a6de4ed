"""The reference driver's steering: pure pursuit of the centre line (tests, the demo, benchmarks)."""

from __future__ import annotations

import math

from race_server.sim.tracks import Track


def pure_pursuit(
    track: Track, x: float, y: float, yaw: float, speed: float, lookahead: float = 0.45, wheelbase: float = 0.164
) -> tuple[float, float]:
    """(steering degrees, speed) steering the car origin toward the centre line ``lookahead`` ahead."""
    pos = track.locate(x, y)
    tx, ty, _ = track.pose_at(pos.projection_distance + lookahead)
    alpha = math.atan2(ty - y, tx - x) - yaw
    alpha = (alpha + math.pi) % (2.0 * math.pi) - math.pi
    dist = max(math.hypot(tx - x, ty - y), 1e-6)
    steer = math.degrees(math.atan2(2.0 * wheelbase * math.sin(alpha), dist))
    return max(-30.0, min(30.0, steer)), speed
