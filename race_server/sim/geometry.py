"""Polyline geometry with a grid index for fast nearest-point queries.

The simulator asks for the nearest point on the centre line and on both borders every step, so
queries avoid numpy call overhead: a coarse grid maps each cell to the few segments that can hold
the nearest point for any query inside that cell, and those are scanned in plain Python.
"""

from __future__ import annotations

import math
from bisect import bisect_right

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

# (ax, ay, dx, dy, 1/len^2, cumulative length at a, segment length, segment index)
_Segment = tuple[float, float, float, float, float, float, float, int]

# Segments whose length is below this are treated as repeated rows (never nearest, never used
# for headings); the neighbouring segments share their endpoint, so nothing is lost.
ZERO_LENGTH = 1e-12


def signed_area(points: FloatArray) -> float:
    """Shoelace area of a closed ring (positive when counter-clockwise)."""
    x = points[:, 0]
    y = points[:, 1]
    return float(0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


class Polyline:
    """A polyline through raw rows, parametrised by arc length; repeated rows are kept."""

    def __init__(self, points: FloatArray, cell: float = 0.075, margin: float = 1.5) -> None:
        pts = np.array(points, dtype=np.float64, copy=True)
        if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 2:
            raise ValueError(f"points: expected an (N>=2, 2) array, got shape {pts.shape}")
        pts.setflags(write=False)
        self.points: FloatArray = pts
        delta = np.diff(pts, axis=0)
        seg_len = np.hypot(delta[:, 0], delta[:, 1])
        cum = np.concatenate(([0.0], np.cumsum(seg_len)))
        self.seg_len: FloatArray = seg_len
        self.cum: FloatArray = cum
        self.length = float(cum[-1])
        if self.length <= 0.0:
            raise ValueError("points: polyline has zero length")
        self._cum_list: list[float] = cum.tolist()
        live = np.flatnonzero(seg_len > ZERO_LENGTH)
        self._live = live
        self._a = pts[live]
        self._d = delta[live]
        self._inv_len2 = 1.0 / (seg_len[live] ** 2)
        self.seg_heading: FloatArray = np.arctan2(delta[:, 1], delta[:, 0])
        self._segments: list[_Segment] = [
            (
                float(pts[i, 0]),
                float(pts[i, 1]),
                float(delta[i, 0]),
                float(delta[i, 1]),
                1.0 / float(seg_len[i]) ** 2,
                float(cum[i]),
                float(seg_len[i]),
                int(i),
            )
            for i in live
        ]
        self._build_grid(cell, margin)

    def _build_grid(self, cell: float, margin: float) -> None:
        lo = self.points.min(axis=0) - margin
        hi = self.points.max(axis=0) + margin
        self._x0 = float(lo[0])
        self._y0 = float(lo[1])
        self._cell = cell
        self._inv_cell = 1.0 / cell
        self._nx = max(1, math.ceil((hi[0] - lo[0]) / cell))
        self._ny = max(1, math.ceil((hi[1] - lo[1]) / cell))
        # Filled on first use: a car visits few cells, and building every cell up front costs
        # far more than the queries it would save.
        self._cells: dict[int, tuple[_Segment, ...]] = {}

    def _fill_cell(self, gx: int, gy: int) -> tuple[_Segment, ...]:
        centre = np.array([[self._x0 + (gx + 0.5) * self._cell, self._y0 + (gy + 0.5) * self._cell]])
        dist = np.sqrt(_segment_sqdist(centre, self._a, self._d, self._inv_len2)[0])
        # Any query point is within half a cell diagonal of its cell centre, so its nearest
        # segment is at most one diagonal farther from the centre than the centre's nearest one.
        slack = self._cell * math.sqrt(2.0) + 1e-9
        keep = np.flatnonzero(dist <= dist.min() + slack)
        candidates = tuple(self._segments[j] for j in keep)
        self._cells[gy * self._nx + gx] = candidates
        return candidates

    def project(self, x: float, y: float) -> tuple[float, int, float, float, float]:
        """Nearest point on the polyline: (arc length, raw segment index, px, py, squared distance).

        Ties go to the lowest segment index, like shapely's ``project``.
        """
        gx = int((x - self._x0) * self._inv_cell)
        gy = int((y - self._y0) * self._inv_cell)
        if 0 <= gx < self._nx and 0 <= gy < self._ny and x >= self._x0 and y >= self._y0:
            candidates = self._cells.get(gy * self._nx + gx)
            if candidates is None:
                candidates = self._fill_cell(gx, gy)
        else:
            candidates = (self._segments[self._nearest_segment(x, y)],)
        best = math.inf
        out = (0.0, 0, 0.0, 0.0, math.inf)
        for ax, ay, dx, dy, inv_len2, cum, seg_len, i in candidates:
            t = ((x - ax) * dx + (y - ay) * dy) * inv_len2
            if t < 0.0:
                t = 0.0
            elif t > 1.0:
                t = 1.0
            px = ax + t * dx
            py = ay + t * dy
            d2 = (x - px) * (x - px) + (y - py) * (y - py)
            if d2 < best:
                best = d2
                out = (cum + t * seg_len, i, px, py, d2)
        return out

    def _nearest_segment(self, x: float, y: float) -> int:
        d2 = _segment_sqdist(np.array([[x, y]]), self._a, self._d, self._inv_len2)[0]
        return int(np.argmin(d2))

    def segment_at(self, distance: float) -> int:
        """Raw index of the non-degenerate segment holding arc length ``distance`` (clamped)."""
        i = bisect_right(self._cum_list, distance) - 1
        i = min(max(i, 0), len(self.seg_len) - 1)
        while i > 0 and self.seg_len[i] <= ZERO_LENGTH:
            i -= 1
        while self.seg_len[i] <= ZERO_LENGTH:
            i += 1
        return i

    def interpolate(self, distance: float) -> tuple[float, float, float]:
        """(x, y, heading_rad) at arc length ``distance``, clamped to the ends."""
        d = min(max(distance, 0.0), self.length)
        i = self.segment_at(d)
        t = (d - self._cum_list[i]) / float(self.seg_len[i])
        t = min(max(t, 0.0), 1.0)
        a = self.points[i]
        b = self.points[i + 1]
        return (
            float(a[0] + t * (b[0] - a[0])),
            float(a[1] + t * (b[1] - a[1])),
            float(self.seg_heading[i]),
        )


def _segment_sqdist(points: FloatArray, a: FloatArray, d: FloatArray, inv_len2: FloatArray) -> FloatArray:
    """(P, S) squared distances from each point to each segment a + t*d, t in [0, 1]."""
    rx = points[:, 0:1] - a[None, :, 0]
    ry = points[:, 1:2] - a[None, :, 1]
    t = np.clip((rx * d[None, :, 0] + ry * d[None, :, 1]) * inv_len2[None, :], 0.0, 1.0)
    ex = rx - t * d[None, :, 0]
    ey = ry - t * d[None, :, 1]
    out: FloatArray = ex * ex + ey * ey
    return out
