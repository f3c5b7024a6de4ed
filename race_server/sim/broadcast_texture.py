"""The track's colour texture for the broadcast camera, with coarser levels for far-away ground.

The training camera samples a grey 1 cm texture; people watching want colour and no shimmer, so
the broadcast camera samples packed RGBA texels (one uint32 gather per pixel instead of three) from
a small pyramid: level k averages 2^k x 2^k texels and is sampled where one screen pixel covers
about that much ground.

Texels are packed little-endian (R | G << 8 | B << 16 | A << 24), so a uint32 image viewed as bytes
is an (H, W, 4) RGBA image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from race_server.sim.texture import (
    BORDER_LINE_WIDTH,
    CENTRE_DASH_OFF,
    CENTRE_DASH_ON,
    CENTRE_LINE_WIDTH,
    TrackGeometry,
    _fill_polygon,
    _paint_polyline,
)

RGB = tuple[int, int, int]

FIELD = (62, 122, 56)
ROAD = (52, 53, 58)
BORDER = (242, 242, 236)
CENTRE = (238, 196, 40)
CHECKER_DARK = (20, 20, 22)
_LABEL_FIELD, _LABEL_ROAD, _LABEL_BORDER, _LABEL_CENTRE = 0, 1, 2, 3
_PALETTE = np.array([FIELD, ROAD, BORDER, CENTRE], dtype=np.float32)
START_LINE_DEPTH = 0.12  # metres of checkered band across the road at the start line
CHECKER = 0.04  # metres per checker square
LEVELS = 4


def pack(rgb: RGB, alpha: int = 255) -> int:
    r, g, b = rgb
    return int(r) | (int(g) << 8) | (int(b) << 16) | (int(alpha) << 24)


def pack_array(rgb: npt.NDArray[np.floating] | npt.NDArray[np.uint8]) -> npt.NDArray[np.uint32]:
    """(..., 3) colours 0-255 -> (...) packed opaque uint32."""
    c = np.clip(np.rint(np.asarray(rgb, dtype=np.float32)), 0, 255).astype(np.uint32)
    packed = c[..., 0] | (c[..., 1] << np.uint32(8)) | (c[..., 2] << np.uint32(16)) | np.uint32(0xFF000000)
    out: npt.NDArray[np.uint32] = packed.astype(np.uint32, copy=False)
    return out


@dataclass(frozen=True, eq=False)
class ColourLevel:
    texels: npt.NDArray[np.uint32]  # flat, row-major; row index grows with y
    rows: int
    cols: int
    resolution: float  # metres per texel


@dataclass(frozen=True, eq=False)
class ColourTexture:
    origin_x: float
    origin_y: float
    levels: tuple[ColourLevel, ...]  # level 0 finest

    def level_for(self, footprint_m: float) -> int:
        """The level whose texel best matches a screen pixel covering ``footprint_m`` of ground."""
        base = self.levels[0].resolution
        if footprint_m <= base:
            return 0
        return min(int(math.log2(footprint_m / base)), len(self.levels) - 1)


def _start_line(rgb: npt.NDArray[np.float32], track: TrackGeometry, ox: float, oy: float, res: float) -> None:
    """Paint a checkered band across the road just past the start line."""
    inner = np.asarray(track.inner_border[0], dtype=np.float64)
    outer = np.asarray(track.outer_border[0], dtype=np.float64)
    wp = np.asarray(track.waypoints, dtype=np.float64)
    across = outer - inner
    width = float(np.hypot(*across))
    if width <= 1e-9:
        return
    u = across / width
    ahead = wp[1] - wp[0]
    n = np.array([-u[1], u[0]])
    if float(n @ ahead) < 0.0:
        n = -n
    corners = np.array([inner, outer, inner + n * START_LINE_DEPTH, outer + n * START_LINE_DEPTH])
    rows, cols = rgb.shape[:2]
    c0 = max(int((corners[:, 0].min() - ox) / res) - 1, 0)
    c1 = min(int((corners[:, 0].max() - ox) / res) + 2, cols)
    r0 = max(int((corners[:, 1].min() - oy) / res) - 1, 0)
    r1 = min(int((corners[:, 1].max() - oy) / res) + 2, rows)
    if c0 >= c1 or r0 >= r1:
        return
    px, py = np.meshgrid(
        ox + (np.arange(c0, c1) + 0.5) * res - inner[0], oy + (np.arange(r0, r1) + 0.5) * res - inner[1]
    )
    a = px * u[0] + py * u[1]
    d = px * n[0] + py * n[1]
    inside = (a >= 0.0) & (a <= width) & (d >= 0.0) & (d <= START_LINE_DEPTH)
    dark = ((np.floor(a / CHECKER) + np.floor(d / CHECKER)) % 2) == 0
    patch = rgb[r0:r1, c0:c1]
    patch[inside & dark] = CHECKER_DARK
    patch[inside & ~dark] = BORDER


def colour_texture(track: TrackGeometry, resolution: float = 0.01, margin: float = 3.0) -> ColourTexture:
    """Rasterise road, borders, dashed centre line and start line into a colour pyramid."""
    allpts = np.vstack([track.waypoints, track.inner_border, track.outer_border])
    ox = float(allpts[:, 0].min()) - margin
    oy = float(allpts[:, 1].min()) - margin
    step = 1 << (LEVELS - 1)
    cols = math.ceil((float(allpts[:, 0].max()) + margin - ox) / resolution / step) * step
    rows = math.ceil((float(allpts[:, 1].max()) + margin - oy) / resolution / step) * step
    road = np.zeros((rows, cols), dtype=bool)
    _fill_polygon(road, track.road_polygon, ox, oy, resolution)
    labels = np.where(road, np.uint8(_LABEL_ROAD), np.uint8(_LABEL_FIELD)).astype(np.uint8)
    wp = np.asarray(track.waypoints, dtype=np.float64)
    _paint_polyline(
        labels, wp, CENTRE_LINE_WIDTH / 2, _LABEL_CENTRE, ox, oy, resolution, (CENTRE_DASH_ON, CENTRE_DASH_OFF)
    )
    for border in (track.inner_border, track.outer_border):
        _paint_polyline(
            labels, np.asarray(border, dtype=np.float64), BORDER_LINE_WIDTH / 2, _LABEL_BORDER, ox, oy, resolution
        )
    rgb = _PALETTE[labels]
    # fixed grain on grass and asphalt gives the eye motion cues; seeded so frames are reproducible
    grain = np.random.default_rng(7).normal(0.0, 1.0, size=(rows // 2, cols // 2)).astype(np.float32)
    grain = np.repeat(np.repeat(grain, 2, axis=0), 2, axis=1)
    rgb += (np.where(labels == _LABEL_FIELD, 7.0, np.where(labels == _LABEL_ROAD, 2.5, 0.0)) * grain)[..., None]
    _start_line(rgb, track, ox, oy, resolution)
    levels: list[ColourLevel] = []
    level_rgb = rgb
    for k in range(LEVELS):
        r, c = level_rgb.shape[:2]
        packed = pack_array(level_rgb)
        # a frame of field texels: rays clamped to the edge show grass, not a smeared line
        packed[0, :] = packed[-1, :] = packed[:, 0] = packed[:, -1] = pack(FIELD)
        levels.append(ColourLevel(np.ascontiguousarray(packed).reshape(-1), r, c, resolution * (1 << k)))
        if k + 1 < LEVELS:
            level_rgb = level_rgb.reshape(r // 2, 2, c // 2, 2, 3).mean(axis=(1, 3))
    return ColourTexture(ox, oy, tuple(levels))
