"""LiDAR: ranges against known geometry and a shapely reference, and DeepRacer's sector encodings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from shapely.geometry import LineString, Point, Polygon

from race_server.sim.lidar import (
    Lidar,
    discretized_sector_lidar,
    lidar_observation,
    sector_lidar,
)
from race_server.sim.objects import BOT_HEIGHT, BOT_LENGTH, BOT_WIDTH, BOX_HEIGHT, BOX_LENGTH, BOX_WIDTH, Box

MOUNT_FORWARD = 0.029


def ray_angle(i: int) -> float:
    """Car-frame bearing of ray i: the sensor faces backwards and sweeps -150..+150 degrees."""
    return math.pi + (-2.61799 + i * (2 * 2.61799) / 63)


def sensor_origin(x: float, y: float, yaw: float) -> tuple[float, float]:
    return x + MOUNT_FORWARD * math.cos(yaw), y + MOUNT_FORWARD * math.sin(yaw)


def box_facing_ray(car: tuple[float, float, float], i: int, distance: float, is_bot: bool = False) -> Box:
    """A box whose near face is square to ray i, ``distance`` metres from the sensor."""
    ox, oy = sensor_origin(*car)
    bearing = car[2] + ray_angle(i)
    length, width, height = (BOT_LENGTH, BOT_WIDTH, BOT_HEIGHT) if is_bot else (BOX_LENGTH, BOX_WIDTH, BOX_HEIGHT)
    d = distance + length / 2
    return Box(ox + d * math.cos(bearing), oy + d * math.sin(bearing), bearing, length, width, height, is_bot)


def reference_scan(car: tuple[float, float, float], boxes: list[Box]) -> np.ndarray:
    ox, oy = sensor_origin(*car)
    out = np.full(64, 12.0)
    polygons = [Polygon(b.corners()) for b in boxes]
    for i in range(64):
        a = car[2] + ray_angle(i)
        ray = LineString([(ox, oy), (ox + 12.0 * math.cos(a), oy + 12.0 * math.sin(a))])
        for poly in polygons:
            hit = ray.intersection(poly)
            if not hit.is_empty:
                out[i] = min(out[i], max(Point(ox, oy).distance(hit), 0.15))
    return out


CAR = (2.0, 1.0, 0.7)


def test_box_at_known_bearing_and_range() -> None:
    lidar = Lidar()
    box = box_facing_ray(CAR, 20, 0.6)
    scan = lidar.scan(*CAR, [box])
    assert scan.shape == (64,) and scan.dtype == np.float32
    assert scan[20] == pytest.approx(0.6, abs=1e-5)
    hit = np.flatnonzero(scan < 12.0)
    assert 20 in hit and hit.min() >= 15 and hit.max() <= 25  # a 0.39 m face at 0.6 m spans ~+-18 deg
    assert (np.delete(scan, hit) == 12.0).all()


def test_blind_cone_is_ahead_and_straight_behind_is_seen() -> None:
    lidar = Lidar()
    x, y, yaw = CAR
    ahead = Box(x + 1.0 * math.cos(yaw), y + 1.0 * math.sin(yaw), yaw, BOX_LENGTH, BOX_WIDTH, BOX_HEIGHT)
    assert (lidar.scan(*CAR, [ahead]) == 12.0).all()
    behind = Box(x - 1.0 * math.cos(yaw), y - 1.0 * math.sin(yaw), yaw, BOX_LENGTH, BOX_WIDTH, BOX_HEIGHT)
    scan = lidar.scan(*CAR, [behind])
    expected = 1.0 + MOUNT_FORWARD - BOX_LENGTH / 2
    assert scan[31] == pytest.approx(expected / math.cos(ray_angle(31) - math.pi), abs=1e-5)
    assert scan[32] == pytest.approx(expected / math.cos(ray_angle(32) - math.pi), abs=1e-5)


def test_nearer_object_wins_and_close_objects_read_min_range() -> None:
    lidar = Lidar()
    near = box_facing_ray(CAR, 40, 0.5, is_bot=True)
    far = box_facing_ray(CAR, 40, 1.5)
    assert lidar.scan(*CAR, [far, near])[40] == pytest.approx(0.5, abs=1e-5)
    touching = box_facing_ray(CAR, 40, 0.05)
    assert lidar.scan(*CAR, [touching])[40] == pytest.approx(0.15)


@pytest.mark.parametrize("seed", range(5))
def test_scan_matches_shapely_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lidar = Lidar()
    car = (float(rng.uniform(-5, 5)), float(rng.uniform(-5, 5)), float(rng.uniform(-math.pi, math.pi)))
    boxes = []
    for _ in range(6):
        r, a = rng.uniform(0.4, 4.0), rng.uniform(-math.pi, math.pi)
        boxes.append(
            Box(
                car[0] + r * math.cos(a),
                car[1] + r * math.sin(a),
                float(rng.uniform(-3, 3)),
                BOX_LENGTH,
                BOX_WIDTH,
                BOX_HEIGHT,
            )
        )
    scan = lidar.scan(*car, boxes)
    assert np.allclose(scan, reference_scan(car, boxes), atol=1e-4)
    assert (scan < 12.0).sum() > 5


def test_lidar_observation_clips_to_015_and_1() -> None:
    lidar = Lidar()
    scan = lidar.scan(*CAR, [box_facing_ray(CAR, 10, 0.6), box_facing_ray(CAR, 50, 3.0)])
    obs = lidar_observation(scan)
    assert obs[10] == pytest.approx(0.6, abs=1e-5)
    assert obs[50] == 1.0
    assert obs.max() == 1.0 and obs.min() >= 0.15
    assert np.array_equal(
        lidar.observe("LIDAR", *CAR, [box_facing_ray(CAR, 10, 0.6), box_facing_ray(CAR, 50, 3.0)]), obs
    )
    assert lidar_observation(np.full(64, 0.01, dtype=np.float32)).min() == pytest.approx(0.15)


def test_sector_lidar_is_binary_under_half_a_metre() -> None:
    lidar = Lidar()
    # a bot car's 0.196 m tail at 0.4 m spans rays 18-22, all in sector 2 (rays 16-23)
    close = lidar.scan(*CAR, [box_facing_ray(CAR, 20, 0.4, is_bot=True)])
    sectors = sector_lidar(close)
    assert sectors.shape == (8,)
    assert sectors.tolist() == [0, 0, 1, 0, 0, 0, 0, 0]  # rays 16-23 are sector 2
    assert np.array_equal(lidar.sector_lidar(close), sectors)
    assert sector_lidar(lidar.scan(*CAR, [box_facing_ray(CAR, 20, 0.6, is_bot=True)])).tolist() == [0] * 8
    assert np.array_equal(lidar.observe("SECTOR_LIDAR", *CAR, [box_facing_ray(CAR, 20, 0.4, is_bot=True)]), sectors)


@pytest.mark.parametrize(("distance", "bin_index"), [(0.3, 1), (0.6, 2), (1.1, 4), (1.9, 7), (2.5, None)])
def test_discretized_sector_lidar_one_hot_bins_over_two_metres(distance: float, bin_index: int | None) -> None:
    lidar = Lidar()
    bot = box_facing_ray(CAR, 44, distance, is_bot=True)  # ray 44 is in sector 5 (rays 40-47)
    scan = lidar.scan(*CAR, [bot])
    grid = discretized_sector_lidar(scan)
    assert grid.shape == (8, 8)
    expected = np.zeros((8, 8), dtype=np.float32)
    if bin_index is not None:
        expected[5, bin_index] = 1.0
    assert np.array_equal(grid, expected)
    assert np.array_equal(lidar.discretized_sector_lidar(scan), expected)
    flat = lidar.observe("DISCRETIZED_SECTOR_LIDAR", *CAR, [bot])
    assert flat.shape == (64,) and np.array_equal(flat, expected.reshape(-1))


def test_noise_only_with_an_rng_and_deterministic_per_seed() -> None:
    lidar = Lidar()
    boxes = [box_facing_ray(CAR, k, 0.5 + 0.1 * k) for k in (4, 12, 28, 36, 52, 60)]
    clean = lidar.scan(*CAR, boxes)
    assert np.array_equal(clean, lidar.scan(*CAR, boxes))
    a = lidar.scan(*CAR, boxes, rng=np.random.default_rng(9))
    b = lidar.scan(*CAR, boxes, rng=np.random.default_rng(9))
    assert np.array_equal(a, b)
    hits = clean < 12.0
    assert 0.002 < float(np.std(a[hits] - clean[hits])) < 0.03
    assert a.max() <= 12.0 and a.min() >= 0.15


def test_observe_rejects_unknown_sensor() -> None:
    with pytest.raises(ValueError, match="sensor"):
        Lidar().observe("RADAR", *CAR, [])
