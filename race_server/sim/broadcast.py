"""The broadcast camera: the race drawn for people, in colour, at 30 fps on one CPU core.

Three views, switchable per frame: ``chase`` (behind and above the car, turning with it), ``tv``
(trackside cameras on poles that pan to follow the car, cutting to the nearest pole) and
``topdown`` (the whole track from above). The perspective views use the training camera's trick
(`race_server.sim.camera`): with a fixed pitch every pixel's ground offset in the camera's yaw frame
is constant, so a frame's ground is one affine transform and one gather per pixel from the colour
texture (`broadcast_texture`), at the pyramid level matching each row's ground footprint. Solids
(boxes, bots, the car) are ray-cast analytically inside their projected rectangles
(`broadcast_solids`). The top-down ground never changes, so it is drawn once.

Frames are (height, width, 4) uint8 RGBA views of the renderer's own buffer, valid until the next
``render``; the alpha byte is 255. Motion is smoothed by `PoseInterpolator`, which turns the 15 Hz
states into a pose for any display time.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from race_server.sim.broadcast_solids import Rays, Solid, box_solids, car_solids, cast, paint_from_above
from race_server.sim.broadcast_texture import ColourTexture, colour_texture, pack_array
from race_server.sim.objects import Box
from race_server.sim.tracks import Track

View = Literal["chase", "tv", "topdown"]
VIEWS: tuple[View, ...] = ("chase", "tv", "topdown")
SKY_TOP = (112, 158, 214)
SKY_HORIZON = (206, 222, 236)


@dataclass(frozen=True)
class Pose:
    x: float
    y: float
    yaw: float  # radians


@dataclass(frozen=True)
class RigSpec:
    hfov: float
    pitch: float  # radians, negative looks down
    height: float  # lens above ground, metres
    back: float = 0.0  # chase: metres behind the car origin


CHASE = RigSpec(hfov=1.20, pitch=-0.30, height=0.55, back=0.95)
TV = RigSpec(hfov=0.90, pitch=-0.45, height=1.5)
TV_SETBACK = 1.4  # metres outside the outer border
TV_SPACING = 4.5  # metres of track per trackside camera
TV_HYSTERESIS = 0.8  # cut only when another pole is this much nearer (as a ratio)
TOPDOWN_TOP = 0.27  # fraction of the height kept for the overlay's top panels in the top-down view
TOPDOWN_MARGIN = 0.03


class _Rig:
    """A pinhole camera with fixed pitch and height: per-pixel rays and ground offsets, computed once."""

    def __init__(self, spec: RigSpec, width: int, height: int, texture: ColourTexture) -> None:
        self.spec = spec
        self.width, self.height = width, height
        focal = (width / 2.0) / math.tan(spec.hfov / 2.0)
        a = (np.arange(width) + 0.5 - width / 2.0) / focal
        b = (np.arange(height) + 0.5 - height / 2.0) / focal
        down = -spec.pitch
        cp, sp = math.cos(down), math.sin(down)
        shape = (height, width)
        dx = np.ascontiguousarray(np.broadcast_to((cp - b * sp)[:, None], shape), dtype=np.float32)
        dy = np.ascontiguousarray(np.broadcast_to(-a[None, :], shape), dtype=np.float32)
        dz = np.ascontiguousarray(np.broadcast_to((-sp - b * cp)[:, None], shape), dtype=np.float32)
        self.rays = Rays(dx, dy, dz, focal, (cp, -sp), (sp, cp))
        row_dz = -sp - b * cp
        ground = np.flatnonzero(row_dz < -1e-6)
        self.first_ground_row = int(ground[0]) if len(ground) else height
        # ground offsets (metres, yaw frame) of every ground pixel as complex numbers x + iy: a frame's
        # rotation and shift is then one complex multiply-add, far cheaper than a (2, 3) matmul
        t = spec.height / -row_dz[self.first_ground_row :]
        gx = (t * (cp - b[self.first_ground_row :] * sp))[:, None] * np.ones((1, width))
        gy = t[:, None] * -a[None, :]
        self.offsets = (gx + 1j * gy).reshape(-1).astype(np.complex64)
        # bands of rows sampling one pyramid level each: the ground a pixel covers grows with distance
        footprint = np.maximum(t / focal / np.maximum(-row_dz[self.first_ground_row :], 1e-3), t / focal)
        levels = [texture.level_for(float(f)) for f in footprint]
        self.bands: list[tuple[int, int, int]] = []
        start = 0
        for row in range(1, len(levels) + 1):
            if row == len(levels) or levels[row] != levels[start]:
                self.bands.append((start * width, row * width, levels[start]))
                start = row
        n = self.offsets.shape[0]
        self._coords = np.empty(n, dtype=np.complex64)
        self._cols = np.empty(n, dtype=np.int32)
        self._rows = np.empty(n, dtype=np.int32)
        rows = np.arange(self.first_ground_row, dtype=np.float32)[:, None] / max(self.first_ground_row, 1)
        sky = (
            np.array(SKY_TOP, np.float32) * (1 - rows[..., None]) + np.array(SKY_HORIZON, np.float32) * rows[..., None]
        )
        self.sky = pack_array(np.broadcast_to(sky, (self.first_ground_row, width, 3)))

    def ground(
        self, texture: ColourTexture, lens: tuple[float, float], yaw: float, out: npt.NDArray[np.uint32]
    ) -> None:
        """Gather the ground seen from ``lens`` at ``yaw`` into ``out`` (flat pixels below the horizon)."""
        turn = complex(math.cos(yaw), math.sin(yaw))
        for begin, end, k in self.bands:
            level = texture.levels[k]
            inv = 1.0 / level.resolution
            coords = self._coords[begin:end]
            np.multiply(self.offsets[begin:end], np.complex64(turn * inv), out=coords)
            shift = complex((lens[0] - texture.origin_x) * inv, (lens[1] - texture.origin_y) * inv)
            np.add(coords, np.complex64(shift), out=coords)
            cols, rows = self._cols[begin:end], self._rows[begin:end]
            # clamp and truncate in one pass (truncation == floor: the clamped coords are >= 0)
            np.clip(coords.real, 0, level.cols - 1, out=cols, casting="unsafe")
            np.clip(coords.imag, 0, level.rows - 1, out=rows, casting="unsafe")
            np.multiply(rows, level.cols, out=rows)
            np.add(rows, cols, out=rows)
            np.take(level.texels, rows, out=out[begin:end])


def tv_poles(track: Track, spacing: float = TV_SPACING, setback: float = TV_SETBACK) -> list[tuple[float, float]]:
    """Trackside camera positions: evenly along the lap, ``setback`` outside the outer border."""
    count = max(4, round(track.length / spacing))
    poles = []
    centre, outer = track.waypoints, track.outer_border
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(centre, axis=0).T))])
    for k in range(count):
        i = int(np.searchsorted(cum, track.length * (k + 0.5) / count))
        i = min(i, len(centre) - 1)
        away = outer[i] - centre[i]
        norm = float(np.hypot(*away))
        if norm < 1e-9:
            continue
        p = outer[i] + away / norm * setback
        poles.append((float(p[0]), float(p[1])))
    return poles


class BroadcastRenderer:
    """Renders (height, width, 4) RGBA frames of a track with the car and its objects."""

    def __init__(self, track: Track, width: int = 1280, height: int = 720) -> None:
        if width < 16 or height < 16:
            raise ValueError(f"width, height: {width}x{height}; allowed values: >= 16")
        self.track = track
        self.width, self.height = width, height
        self.texture = colour_texture(track)
        self._rigs: dict[View, _Rig] = {}
        self._buffer = np.empty((height, width), dtype=np.uint32)
        self._depth = np.empty((height, width), dtype=np.float32)
        self.poles = tv_poles(track)
        self.pole = 0
        self._topdown_bg: npt.NDArray[np.uint32] | None = None
        self._topdown_map: tuple[float, float, float] = (0.0, 0.0, 1.0)

    def _rig(self, view: View) -> _Rig:
        rig = self._rigs.get(view)
        if rig is None:
            rig = _Rig(CHASE if view == "chase" else TV, self.width, self.height, self.texture)
            self._rigs[view] = rig
        return rig

    def render(self, view: View, car: Pose | None, boxes: Sequence[Box] = ()) -> npt.NDArray[np.uint8]:
        """One frame; ``car`` None draws the scene without the car (between runs)."""
        solids = box_solids(boxes)
        if car is not None:
            solids += car_solids(car.x, car.y, car.yaw)
        if view == "topdown":
            self._render_topdown(solids)
        elif view in ("chase", "tv"):
            at = car if car is not None else Pose(*self.track.pose_at(0.0))
            self._render_perspective(view, at, solids)
        else:
            raise ValueError(f"view: {view!r}; allowed values: {', '.join(VIEWS)}")
        return self._buffer.view(np.uint8).reshape(self.height, self.width, 4)

    def _render_perspective(self, view: View, car: Pose, solids: list[Solid]) -> None:
        rig = self._rig(view)
        if view == "chase":
            yaw = car.yaw
            lens = (car.x - math.cos(yaw) * rig.spec.back, car.y - math.sin(yaw) * rig.spec.back)
        else:
            lens = self._pick_pole(car)
            yaw = math.atan2(car.y - lens[1], car.x - lens[0])
        flat = self._buffer.reshape(-1)
        sky_rows = rig.first_ground_row
        self._buffer[:sky_rows] = rig.sky
        rig.ground(self.texture, lens, yaw, flat[sky_rows * self.width :])
        if solids:
            self._depth.fill(np.inf)
            cast(rig.rays, (lens[0], lens[1], rig.spec.height), yaw, solids, self._buffer, self._depth)

    def _pick_pole(self, car: Pose) -> tuple[float, float]:
        if not self.poles:
            return (car.x - 3.0, car.y - 3.0)
        dist = [math.hypot(px - car.x, py - car.y) for px, py in self.poles]
        best = int(np.argmin(dist))
        if self.pole >= len(self.poles) or dist[best] < TV_HYSTERESIS * dist[self.pole]:
            self.pole = best
        return self.poles[self.pole]

    def _render_topdown(self, solids: list[Solid]) -> None:
        if self._topdown_bg is None:
            self._topdown_bg = self._draw_topdown_ground()
        np.copyto(self._buffer, self._topdown_bg)
        paint_from_above(solids, self._buffer, self._topdown_map)

    def _draw_topdown_ground(self) -> npt.NDArray[np.uint32]:
        pts = np.vstack([self.track.inner_border, self.track.outer_border])
        lo, hi = pts.min(axis=0) - 0.2, pts.max(axis=0) + 0.2
        # the track fits below the overlay's top panels (TOPDOWN_TOP of the height) with a small margin
        top, margin = TOPDOWN_TOP * self.height, TOPDOWN_MARGIN * self.height
        usable_w, usable_h = self.width - 2 * margin, self.height - top - margin
        scale = max((hi[0] - lo[0]) / usable_w, (hi[1] - lo[1]) / usable_h)
        cx, cy = (lo + hi) / 2.0
        x0 = cx - scale * self.width / 2.0
        y_top = cy + scale * (top + usable_h / 2.0)
        self._topdown_map = (float(x0), float(y_top), float(scale))
        level = self.texture.levels[self.texture.level_for(scale)]
        xs = x0 + (np.arange(self.width) + 0.5) * scale
        ys = y_top - (np.arange(self.height) + 0.5) * scale
        col = np.clip(((xs - self.texture.origin_x) / level.resolution).astype(np.intp), 0, level.cols - 1)
        row = np.clip(((ys - self.texture.origin_y) / level.resolution).astype(np.intp), 0, level.rows - 1)
        bg: npt.NDArray[np.uint32] = level.texels[row[:, None] * level.cols + col[None, :]]
        return bg


class PoseInterpolator:
    """Smooth 30 fps motion from 15 Hz states: the pose at display time, one tick behind the newest.

    States carry the simulator's time ``t``; the display clock is mapped onto it by the smallest
    (arrival - t) seen recently, so late arrivals do not make the picture jump."""

    def __init__(self, delay_s: float = 1.0 / 15.0 + 0.01, window: int = 45) -> None:
        self.delay_s = delay_s
        self._states: deque[tuple[float, Pose]] = deque(maxlen=8)
        self._offsets: deque[float] = deque(maxlen=window)

    def push(self, t: float, pose: Pose, arrived: float) -> None:
        if self._states and t < self._states[-1][0] - 1e-9:
            self.clear()  # a new run: the simulator's clock starts again
        if self._states and abs(t - self._states[-1][0]) < 1e-9:
            self._states[-1] = (t, pose)
        else:
            self._states.append((t, pose))
        self._offsets.append(arrived - t)

    def clear(self) -> None:
        self._states.clear()
        self._offsets.clear()

    def at(self, now: float) -> Pose | None:
        if not self._states:
            return None
        t = now - min(self._offsets) - self.delay_s
        states = self._states
        if t <= states[0][0]:
            return states[0][1]
        for (t0, p0), (t1, p1) in zip(states, list(states)[1:], strict=False):
            if t0 <= t <= t1:
                a = (t - t0) / (t1 - t0) if t1 > t0 else 1.0
                turn = math.remainder(p1.yaw - p0.yaw, math.tau)
                return Pose(p0.x + a * (p1.x - p0.x), p0.y + a * (p1.y - p0.y), p0.yaw + a * turn)
        return states[-1][1]
