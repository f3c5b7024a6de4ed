"""The track map: the lap's centre line in its sectors, each coloured by its latest time, and the car.

Sector colours follow SPEC.md (decided when a sector ends): purple for the session's best, else
green for the racer's personal best, else yellow; a sector not yet driven in this run is grey.
A map image is drawn once per combination of colours and cached.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from race_server.overlay.sprites import RGB, SUPERSAMPLE, Sprite, disc, from_image
from race_server.overlay.state import SectorColour
from race_server.sim.tracks import Track

COLOURS: dict[SectorColour | None, RGB] = {
    "purple": (170, 60, 235),
    "green": (30, 205, 90),
    "yellow": (250, 205, 30),
    None: (150, 152, 160),
}
CAR_DOT = (255, 255, 255)
CAR_RING = (20, 20, 24)
LINE_WIDTH = 7
PAD = 12


class TrackMap:
    """A ``width`` x ``height`` map sprite of ``track`` and the mapping from metres to its pixels."""

    def __init__(self, track: Track, width: int, height: int, scale: float = 1.0) -> None:
        self.width, self.height = width, height
        self.line_width = max(2, round(LINE_WIDTH * scale))
        pad = PAD * scale + self.line_width
        pts = np.asarray(track.waypoints, dtype=np.float64)
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        span = np.maximum(hi - lo, 1e-6)
        self.px_per_m = float(min((width - 2 * pad) / span[0], (height - 2 * pad) / span[1]))
        self._centre = (lo + hi) / 2.0
        self.sectors = self._split(pts, track.sector_bounds())
        self._cache: dict[tuple[SectorColour | None, ...], Sprite] = {}
        self.dot = disc(max(8, round(16 * scale)), CAR_DOT, CAR_RING)

    def to_pixel(self, x: float, y: float) -> tuple[float, float]:
        """Map pixel (column, row) of a world point; y grows upwards in the world, down on screen."""
        return (
            self.width / 2.0 + (x - self._centre[0]) * self.px_per_m,
            self.height / 2.0 - (y - self._centre[1]) * self.px_per_m,
        )

    def _split(self, pts: npt.NDArray[np.float64], bounds: list[float]) -> list[list[tuple[float, float]]]:
        seg = np.hypot(*np.diff(pts, axis=0).T)
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        sectors = []
        for k in range(len(bounds) - 1):
            a, b = bounds[k], bounds[k + 1]
            inside = [i for i in range(len(pts)) if a <= cum[i] <= b]
            ends = [self._at(pts, cum, a)] + [tuple(pts[i]) for i in inside] + [self._at(pts, cum, b)]
            sectors.append([self.to_pixel(float(x), float(y)) for x, y in ends])
        return sectors

    @staticmethod
    def _at(pts: npt.NDArray[np.float64], cum: npt.NDArray[np.float64], d: float) -> tuple[float, float]:
        i = int(np.clip(np.searchsorted(cum, d) - 1, 0, len(pts) - 2))
        span = cum[i + 1] - cum[i]
        f = 0.0 if span <= 0 else (d - cum[i]) / span
        p = pts[i] + f * (pts[i + 1] - pts[i])
        return float(p[0]), float(p[1])

    def sprite(self, colours: tuple[SectorColour | None, ...]) -> Sprite:
        cached = self._cache.get(colours)
        if cached is None:
            cached = self._draw(colours)
            self._cache[colours] = cached
        return cached

    def _draw(self, colours: tuple[SectorColour | None, ...]) -> Sprite:
        k = SUPERSAMPLE
        img = Image.new("RGBA", (self.width * k, self.height * k), (0, 0, 0, 0))
        draw = ImageDraw.Draw(img)
        outline = self.line_width + max(2, self.line_width // 2)
        for line in self.sectors:  # a dark casing keeps the line readable over any picture
            draw.line([(x * k, y * k) for x, y in line], fill=(10, 10, 14, 230), width=outline * k, joint="curve")
        for index, line in enumerate(self.sectors):
            colour = COLOURS[colours[index] if index < len(colours) else None]
            draw.line([(x * k, y * k) for x, y in line], fill=(*colour, 255), width=self.line_width * k, joint="curve")
        sx, sy = self.sectors[0][0]
        r = self.line_width * k
        draw.rectangle((sx * k - r / 3, sy * k - r, sx * k + r / 3, sy * k + r), fill=(255, 255, 255, 255))
        return from_image(img, self.width, self.height)
