"""Top-down grey texture of a track, sampled by the camera renderer.

The texture is a uint8 image of the ground plane: dark road, white border
lines, a yellow dashed centre line and a green field.  Grey levels come from
plausible RGB colours through the same luma weights DeepRacer uses to reduce
its camera frames (0.2989 R + 0.587 G + 0.114 B), so the rendered frame looks
like a greyscale DeepRacer observation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
from shapely.geometry import Polygon


def luma(rgb: tuple[int, int, int]) -> int:
    """DeepRacer's RGB -> grey conversion, rounded to uint8."""
    r, g, b = rgb
    return round(0.2989 * r + 0.587 * g + 0.114 * b)


ROAD_RGB = (48, 48, 52)
BORDER_RGB = (240, 240, 240)
CENTRE_RGB = (235, 200, 40)
FIELD_RGB = (70, 135, 60)
SKY_RGB = (175, 195, 215)

ROAD_GREY = luma(ROAD_RGB)
BORDER_GREY = luma(BORDER_RGB)
CENTRE_GREY = luma(CENTRE_RGB)
FIELD_GREY = luma(FIELD_RGB)
SKY_GREY = luma(SKY_RGB)

BORDER_LINE_WIDTH = 0.05  # metres, centred on each border polyline
CENTRE_LINE_WIDTH = 0.04
CENTRE_DASH_ON = 0.20  # metres of paint, then a gap, along the centre line
CENTRE_DASH_OFF = 0.15


class TrackGeometry(Protocol):
    """The parts of `tracks.Track` the rasteriser reads."""

    @property
    def waypoints(self) -> npt.NDArray[np.float64]: ...
    @property
    def inner_border(self) -> npt.NDArray[np.float64]: ...
    @property
    def outer_border(self) -> npt.NDArray[np.float64]: ...
    @property
    def road_polygon(self) -> Polygon: ...


@dataclass(frozen=True, eq=False)
class TrackTexture:
    """Ground texture: texel (row, col) covers x in [ox + col*res, ox + (col+1)*res), y likewise with row."""

    pixels: npt.NDArray[np.uint8]  # (rows, cols); row index grows with y
    origin_x: float
    origin_y: float
    resolution: float  # metres per texel

    def sample(self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        """Nearest texel grey at world points; outside the texture the field colour."""
        rows, cols = self.pixels.shape
        c = np.floor((np.asarray(x) - self.origin_x) / self.resolution).astype(np.int64)
        r = np.floor((np.asarray(y) - self.origin_y) / self.resolution).astype(np.int64)
        inside = (c >= 0) & (c < cols) & (r >= 0) & (r < rows)
        out = np.full(c.shape, FIELD_GREY, dtype=np.uint8)
        out[inside] = self.pixels[r[inside], c[inside]]
        return out


def _ring_edges(polygon: Polygon) -> npt.NDArray[np.float64]:
    """(E, 4) edges x0, y0, x1, y1 of every ring of the polygon (even-odd fill needs them all)."""
    rings = [np.asarray(polygon.exterior.coords)]
    rings += [np.asarray(r.coords) for r in polygon.interiors]
    edges = [np.hstack([r[:-1], r[1:]]) for r in rings if len(r) >= 2]
    return np.vstack(edges)


def _fill_polygon(mask: npt.NDArray[np.bool_], polygon: Polygon, ox: float, oy: float, res: float) -> None:
    """Even-odd scanline fill of texel centres inside the polygon (exterior minus holes)."""
    rows, cols = mask.shape
    edges = _ring_edges(polygon)
    x0, y0, x1, y1 = edges.T
    yc = oy + (np.arange(rows) + 0.5) * res
    lo = np.minimum(y0, y1)
    hi = np.maximum(y0, y1)
    # half-open rule [lo, hi) so a vertex shared by two edges is counted once
    crosses = (yc[:, None] >= lo[None, :]) & (yc[:, None] < hi[None, :])
    r_idx, e_idx = np.nonzero(crosses)
    dy = y1[e_idx] - y0[e_idx]
    xs = x0[e_idx] + (yc[r_idx] - y0[e_idx]) * (x1[e_idx] - x0[e_idx]) / dy
    # first texel column whose centre lies at or right of the crossing
    col = np.clip(np.ceil((xs - ox) / res - 0.5), 0, cols).astype(np.int64)
    toggles = np.zeros((rows, cols + 1), dtype=np.int32)
    np.add.at(toggles, (r_idx, col), 1)
    mask |= (np.cumsum(toggles, axis=1)[:, :cols] % 2).astype(bool)


def _paint_polyline(
    img: npt.NDArray[np.uint8],
    pts: npt.NDArray[np.float64],
    half_width: float,
    grey: int,
    ox: float,
    oy: float,
    res: float,
    dash: tuple[float, float] | None = None,
) -> None:
    """Paint texels within half_width of the polyline; optionally dashed by arc length."""
    rows, cols = img.shape
    seg_start = pts[:-1]
    seg_vec = pts[1:] - pts[:-1]
    seg_len = np.hypot(seg_vec[:, 0], seg_vec[:, 1])
    arc0 = np.concatenate([[0.0], np.cumsum(seg_len)[:-1]])
    pad = half_width + res
    for (sx, sy), (vx, vy), length, s0 in zip(seg_start, seg_vec, seg_len, arc0, strict=True):
        if length <= 1e-9:
            continue  # zero-length segments come from repeated raw rows
        xmin, xmax = min(sx, sx + vx) - pad, max(sx, sx + vx) + pad
        ymin, ymax = min(sy, sy + vy) - pad, max(sy, sy + vy) + pad
        c0 = max(int(np.floor((xmin - ox) / res)), 0)
        c1 = min(int(np.ceil((xmax - ox) / res)), cols)
        r0 = max(int(np.floor((ymin - oy) / res)), 0)
        r1 = min(int(np.ceil((ymax - oy) / res)), rows)
        if c0 >= c1 or r0 >= r1:
            continue
        cx = ox + (np.arange(c0, c1) + 0.5) * res - sx
        cy = oy + (np.arange(r0, r1) + 0.5) * res - sy
        px, py = np.meshgrid(cx, cy)
        t = np.clip((px * vx + py * vy) / (length * length), 0.0, 1.0)
        dist = np.hypot(px - t * vx, py - t * vy)
        on = dist <= half_width
        if dash is not None:
            period = dash[0] + dash[1]
            on &= np.mod(s0 + t * length, period) < dash[0]
        img[r0:r1, c0:c1][on] = grey


def rasterize_track(track: TrackGeometry, resolution: float = 0.01, margin: float = 1.5) -> TrackTexture:
    """Rasterise the track's road, border lines and dashed centre line into a grey texture."""
    if resolution <= 0:
        raise ValueError(f"resolution must be > 0 (got {resolution})")
    allpts = np.vstack([track.waypoints, track.inner_border, track.outer_border])
    ox = float(allpts[:, 0].min()) - margin
    oy = float(allpts[:, 1].min()) - margin
    cols = int(np.ceil((float(allpts[:, 0].max()) + margin - ox) / resolution))
    rows = int(np.ceil((float(allpts[:, 1].max()) + margin - oy) / resolution))
    road = np.zeros((rows, cols), dtype=bool)
    _fill_polygon(road, track.road_polygon, ox, oy, resolution)
    img = np.where(road, np.uint8(ROAD_GREY), np.uint8(FIELD_GREY)).astype(np.uint8)
    _paint_polyline(
        img,
        np.asarray(track.waypoints, dtype=np.float64),
        CENTRE_LINE_WIDTH / 2,
        CENTRE_GREY,
        ox,
        oy,
        resolution,
        dash=(CENTRE_DASH_ON, CENTRE_DASH_OFF),
    )
    for border in (track.inner_border, track.outer_border):
        _paint_polyline(
            img, np.asarray(border, dtype=np.float64), BORDER_LINE_WIDTH / 2, BORDER_GREY, ox, oy, resolution
        )
    # a one-texel field frame lets the renderer clamp far rays onto field colour
    img[0, :] = img[-1, :] = FIELD_GREY
    img[:, 0] = img[:, -1] = FIELD_GREY
    return TrackTexture(pixels=img, origin_x=ox, origin_y=oy, resolution=resolution)
