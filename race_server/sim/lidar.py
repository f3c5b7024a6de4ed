"""Rear-mounted 2-D LiDAR and DeepRacer's LIDAR / SECTOR_LIDAR / DISCRETIZED_SECTOR_LIDAR encodings.

Geometry (aws-deepracer ``deepracer_description`` xacro + DeepRacer simapp sensor constants):
the ``laser`` link sits 0.029 m ahead of the chassis frame (the car origin, midway between the
axles) and ~0.18 m above the ground, turned 180 degrees to face backwards. The ray sensor sweeps
64 samples evenly from -150 to +150 degrees in that backward-facing frame (both ends included),
range 0.15-12 m. In the car frame, ray 0 therefore points 30 degrees left of straight ahead and the
sweep runs counter-clockwise over the left side, straight behind (between rays 31 and 32) and the
right side to ray 63 at 30 degrees right of ahead: the 60 degree blind cone is in front.

The scan is planar: every object (box or bot) in the plane is seen whatever its height; there are no
walls, so rays that hit nothing return the 12 m maximum.

Encodings (DeepRacer simapp observation filters):
* LIDAR: the scan clipped to [0.15, 1.0] m.
* SECTOR_LIDAR: 8 sectors of 8 consecutive rays; 1.0 where the sector's minimum range is < 0.5 m.
* DISCRETIZED_SECTOR_LIDAR: per sector the minimum range, clipped to 2.0 m, cut into 8 bins of
  0.25 m and one-hot encoded; the bin for "nothing within 2.0 m" is dropped, so a clear sector is
  all zeros. DeepRacer feeds this as a flat vector of 64; `discretized_sector_lidar` returns
  (8 sectors, 8 bins) and ``.reshape(-1)`` gives the flat order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from race_server.sim.objects import Box

LIDAR_SAMPLES = 64
LIDAR_MIN_ANGLE = -2.61799  # radians, in the sensor frame
LIDAR_MAX_ANGLE = 2.61799
LIDAR_MIN_RANGE = 0.15
LIDAR_MAX_RANGE = 12.0
LIDAR_MOUNT_FORWARD = 0.029  # metres ahead of the car origin
LIDAR_MOUNT_YAW = math.pi  # the sensor faces backwards
LIDAR_NOISE_STD = 0.01  # metres, Gazebo ray noise; applied only when an rng is given
LIDAR_CLIP = 1.0  # LIDAR observation upper clip
NUMBER_OF_SECTORS = 8
SECTOR_LIDAR_CLIPPING_DIST = 0.5
DISCRETIZED_VALUES_PER_SECTOR = 8
DISCRETIZED_CLIPPING_DIST = 2.0

SENSORS = ("LIDAR", "SECTOR_LIDAR", "DISCRETIZED_SECTOR_LIDAR")


class Lidar:
    """Vectorised ray casting against oriented boxes."""

    def __init__(
        self,
        *,
        samples: int = LIDAR_SAMPLES,
        min_angle: float = LIDAR_MIN_ANGLE,
        max_angle: float = LIDAR_MAX_ANGLE,
        min_range: float = LIDAR_MIN_RANGE,
        max_range: float = LIDAR_MAX_RANGE,
        mount_forward: float = LIDAR_MOUNT_FORWARD,
        mount_yaw: float = LIDAR_MOUNT_YAW,
        noise_std: float = LIDAR_NOISE_STD,
    ) -> None:
        if samples < 1 or samples % NUMBER_OF_SECTORS:
            raise ValueError(f"samples: {samples}; allowed values: a positive multiple of {NUMBER_OF_SECTORS}")
        if not (0.0 <= min_range < max_range):
            raise ValueError(f"min_range, max_range: {min_range}, {max_range}; allowed values: 0 <= min < max")
        self.samples = samples
        self.min_range = min_range
        self.max_range = max_range
        self.mount_forward = mount_forward
        self.noise_std = noise_std
        # ray angles in the car frame (counter-clockwise from straight ahead)
        self.angles: npt.NDArray[np.float64] = mount_yaw + np.linspace(min_angle, max_angle, samples)
        self._cos = np.cos(self.angles)
        self._sin = np.sin(self.angles)

    def origin(self, x: float, y: float, yaw: float) -> tuple[float, float]:
        """World (x, y) of the sensor for a car origin pose."""
        return (x + math.cos(yaw) * self.mount_forward, y + math.sin(yaw) * self.mount_forward)

    def scan(
        self, x: float, y: float, yaw: float, boxes: Sequence[Box], rng: np.random.Generator | None = None
    ) -> npt.NDArray[np.float32]:
        """Raw ranges (samples,) in metres: nearest object hit per ray, ``max_range`` when none."""
        ranges = np.full(self.samples, self.max_range, dtype=np.float64)
        if boxes:
            ox, oy = self.origin(x, y, yaw)
            geo = np.array([[b.x, b.y, b.yaw, b.length, b.width] for b in boxes], dtype=np.float64)
            # ray directions (world) rotated into each box frame: (K, samples)
            rel = geo[:, 2:3] - yaw
            cr, sr = np.cos(rel), np.sin(rel)
            dx = cr * self._cos[None, :] + sr * self._sin[None, :]
            dy = -sr * self._cos[None, :] + cr * self._sin[None, :]
            cb, sb = np.cos(geo[:, 2]), np.sin(geo[:, 2])
            px, py = ox - geo[:, 0], oy - geo[:, 1]
            lx = (cb * px + sb * py)[:, None]  # sensor position in each box frame
            ly = (-sb * px + cb * py)[:, None]
            hl, hw = geo[:, 3:4] / 2.0, geo[:, 4:5] / 2.0
            with np.errstate(divide="ignore", invalid="ignore"):
                ix, iy = 1.0 / dx, 1.0 / dy
                tx1, tx2 = (-hl - lx) * ix, (hl - lx) * ix
                ty1, ty2 = (-hw - ly) * iy, (hw - ly) * iy
            enter = np.maximum(np.minimum(tx1, tx2), np.minimum(ty1, ty2))
            leave = np.minimum(np.maximum(tx1, tx2), np.maximum(ty1, ty2))
            hit = (enter <= leave) & (leave > 0.0)
            # an object closer than the minimum range reads as the minimum range
            dist = np.where(hit, np.maximum(enter, self.min_range), np.inf)
            nearest = dist.min(axis=0)
            np.minimum(ranges, nearest, out=ranges)
        if rng is not None and self.noise_std > 0.0:
            ranges += rng.normal(0.0, self.noise_std, size=self.samples)
            np.clip(ranges, self.min_range, self.max_range, out=ranges)
        return ranges.astype(np.float32)

    def observe(
        self,
        sensor: str,
        x: float,
        y: float,
        yaw: float,
        boxes: Sequence[Box],
        rng: np.random.Generator | None = None,
    ) -> npt.NDArray[np.float32]:
        """The observation DeepRacer's ``sensor`` (LIDAR / SECTOR_LIDAR / DISCRETIZED_SECTOR_LIDAR) sees."""
        if sensor not in SENSORS:
            raise ValueError(f"sensor: {sensor!r} is not one of {', '.join(SENSORS)}")
        raw = self.scan(x, y, yaw, boxes, rng)
        if sensor == "LIDAR":
            return lidar_observation(raw)
        if sensor == "SECTOR_LIDAR":
            return sector_lidar(raw)
        return discretized_sector_lidar(raw).reshape(-1)

    @staticmethod
    def lidar_observation(scan: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return lidar_observation(scan)

    @staticmethod
    def sector_lidar(scan: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return sector_lidar(scan)

    @staticmethod
    def discretized_sector_lidar(scan: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return discretized_sector_lidar(scan)


def lidar_observation(scan: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """LIDAR sensor observation: ranges clipped to [0.15, 1.0] m."""
    return np.clip(np.asarray(scan, dtype=np.float32), LIDAR_MIN_RANGE, LIDAR_CLIP)


def _sector_minima(scan: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    values = np.asarray(scan, dtype=np.float32)
    return np.asarray(values.reshape(NUMBER_OF_SECTORS, -1).min(axis=1), dtype=np.float32)


def sector_lidar(scan: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """SECTOR_LIDAR: (8,) 1.0 where something is within 0.5 m in that sector, else 0.0."""
    return (_sector_minima(scan) < SECTOR_LIDAR_CLIPPING_DIST).astype(np.float32)


def discretized_sector_lidar(
    scan: npt.NDArray[np.float32],
    values_per_sector: int = DISCRETIZED_VALUES_PER_SECTOR,
    clipping_dist: float = DISCRETIZED_CLIPPING_DIST,
) -> npt.NDArray[np.float32]:
    """DISCRETIZED_SECTOR_LIDAR: (8, values_per_sector) one-hot distance bins; a clear sector is all zeros."""
    minima = np.minimum(_sector_minima(scan).astype(np.float64), clipping_dist)
    bins = np.floor(minima / (clipping_dist / values_per_sector)).astype(np.intp)
    out = np.zeros((NUMBER_OF_SECTORS, values_per_sector + 1), dtype=np.float32)
    out[np.arange(NUMBER_OF_SECTORS), np.minimum(bins, values_per_sector)] = 1.0
    return out[:, :values_per_sector]
