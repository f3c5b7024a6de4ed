"""Scripted drivers shared by the simulation tests."""

from __future__ import annotations

import math

from race_server.sim.episode import Simulation


def steer_along_lane(sim: Simulation, lateral: float, lookahead: float = 0.5) -> float:
    """Steering (degrees, clamped to ±30) toward the lane ``lateral`` metres left of centre,
    ``lookahead`` metres ahead: drives the car into whatever sits in that lane."""
    world = sim.world
    assert world is not None
    pos = sim.track.locate(world.x, world.y)
    tx, ty, _ = sim.track.pose_at(pos.projection_distance + lookahead, lateral)
    alpha = math.atan2(ty - world.y, tx - world.x) - world.yaw
    alpha = (alpha + math.pi) % (2 * math.pi) - math.pi
    return max(-30.0, min(30.0, math.degrees(alpha)))
