"""``trackside bench sim``'s camera figure: front-camera frames per second on one core."""

from __future__ import annotations

import time

import numpy as np

from race_server.sim.camera import Camera
from race_server.sim.objects import Box, ObjectsConfig, TrackObjects
from race_server.sim.tracks import Track, load_track


def bench_poses(track: Track, count: int, rng: np.random.Generator) -> list[tuple[float, float, float]]:
    poses = []
    for d in np.linspace(0.0, track.length, count, endpoint=False):
        lateral = float(rng.uniform(-0.3, 0.3)) * track.width
        x, y, heading = track.pose_at(float(d), lateral)
        poses.append((x, y, heading + float(rng.uniform(-0.4, 0.4))))
    return poses


def benchmark_camera(seconds: float = 2.0, route_id: str = "reinvent_base", n_boxes: int = 0) -> float:
    """Front-camera frames per second on one core over varied poses on a track."""
    track = load_track(route_id)
    camera = Camera(track)
    rng = np.random.default_rng(0)
    poses = bench_poses(track, 3000, rng)
    boxes: list[Box] = []
    if n_boxes:
        config = ObjectsConfig(race_type="OBJECT_AVOIDANCE", number_of_obstacles=n_boxes)
        boxes = TrackObjects(track, config, rng).boxes
    frames = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for x, y, yaw in poses:
            camera.render(x, y, yaw, boxes)
        frames += len(poses)
        now = time.perf_counter()
        if now >= deadline:
            return frames / (now - start)
