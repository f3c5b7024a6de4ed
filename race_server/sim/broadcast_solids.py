"""Solid shapes the broadcast camera draws: oriented boxes standing at a height, with flat shading.

Every solid (a cardboard box, a bot's shell, the racer's car's parts) is an oriented box, so one
analytic ray / slab test draws them all, only over the pixels inside the solid's projected bounding
rectangle (as the training camera does). The racer's car and bot cars are built from a handful of
boxes — chassis, shell, wheels and camera mast — which reads as a car at broadcast sizes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from race_server.sim.broadcast_texture import RGB, pack
from race_server.sim.objects import Box

CARDBOARD = (205, 168, 118)
BOT_SHELL = (236, 110, 28)
CAR_SHELL = (96, 74, 232)
CHASSIS = (40, 40, 46)
TYRE = (22, 22, 24)
MAST = (16, 16, 18)
# face brightness by axis: ends, sides and top always differ so edges read from any angle
SHADE_END, SHADE_SIDE, SHADE_TOP = 0.70, 0.86, 1.0
NEAR = 1e-3


@dataclass(frozen=True)
class Solid:
    x: float
    y: float
    z0: float  # base height above the ground
    yaw: float
    length: float
    width: float
    height: float
    rgb: RGB

    @property
    def top(self) -> float:
        return self.z0 + self.height


# (forward, left, z0, length, width, height, colour) of the car's parts in the car frame, whose
# origin is midway between the axles on the ground (as `world.World` places the car)
_CAR_PARTS: tuple[tuple[float, float, float, float, float, float, RGB], ...] = (
    (0.0, 0.0, 0.025, 0.30, 0.15, 0.045, CHASSIS),
    (-0.01, 0.0, 0.055, 0.27, 0.17, 0.06, CAR_SHELL),
    (0.07, 0.0, 0.115, 0.06, 0.08, 0.045, MAST),
    (0.082, 0.085, 0.0, 0.07, 0.035, 0.07, TYRE),
    (0.082, -0.085, 0.0, 0.07, 0.035, 0.07, TYRE),
    (-0.082, 0.085, 0.0, 0.07, 0.035, 0.07, TYRE),
    (-0.082, -0.085, 0.0, 0.07, 0.035, 0.07, TYRE),
)


def car_solids(x: float, y: float, yaw: float, shell: RGB = CAR_SHELL, scale: float = 1.0) -> list[Solid]:
    """The racer's car at pose (x, y, yaw) as solids."""
    c, s = math.cos(yaw), math.sin(yaw)
    out = []
    for fwd, left, z0, length, width, height, rgb in _CAR_PARTS:
        fwd, left = fwd * scale, left * scale
        colour = shell if rgb == CAR_SHELL else rgb
        out.append(
            Solid(
                x + c * fwd - s * left,
                y + s * fwd + c * left,
                z0 * scale,
                yaw,
                length * scale,
                width * scale,
                height * scale,
                colour,
            )
        )
    return out


def box_solids(boxes: Sequence[Box]) -> list[Solid]:
    """Obstacles as cardboard boxes; bots as orange cars scaled to their footprint."""
    out: list[Solid] = []
    for box in boxes:
        if box.is_bot:
            out += car_solids(box.x, box.y, box.yaw, BOT_SHELL, scale=box.length / 0.32)
        else:
            out.append(Solid(box.x, box.y, 0.0, box.yaw, box.length, box.width, box.height, CARDBOARD))
    return out


def _shades(rgb: RGB) -> tuple[int, int, int]:
    def scaled(k: float) -> int:
        r, g, b = rgb
        return pack((round(r * k), round(g * k), round(b * k)))

    return scaled(SHADE_END), scaled(SHADE_SIDE), scaled(SHADE_TOP)


@dataclass(frozen=True, eq=False)
class Rays:
    """Per-pixel ray directions of a pinhole camera in its yaw frame (x forward, y left, z up)."""

    dx: npt.NDArray[np.float32]
    dy: npt.NDArray[np.float32]
    dz: npt.NDArray[np.float32]
    focal: float
    axis_forward: tuple[float, float]  # (x, z) of the optical axis
    axis_up: tuple[float, float]

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.dx.shape
        return h, w


def cast(
    rays: Rays,
    lens: tuple[float, float, float],
    yaw: float,
    solids: Sequence[Solid],
    image: npt.NDArray[np.uint32],
    depth: npt.NDArray[np.float32],
) -> None:
    """Draw ``solids`` into ``image`` where nearer than ``depth`` (updated)."""
    lx, ly, lz = lens
    c, s = math.cos(yaw), math.sin(yaw)
    height, width = rays.shape
    hmid, vmid, focal = width / 2.0 - 0.5, height / 2.0 - 0.5, rays.focal
    fx, fz = rays.axis_forward
    ux, uz = rays.axis_up
    for solid in solids:
        rx, ry = solid.x - lx, solid.y - ly
        cx = c * rx + s * ry
        cy = -s * rx + c * ry
        psi = solid.yaw - yaw
        cpsi, spsi = math.cos(psi), math.sin(psi)
        hl, hw = solid.length / 2.0, solid.width / 2.0
        us: list[float] = []
        vs: list[float] = []
        straddles = False
        for ex, ey in ((hl, hw), (-hl, hw), (-hl, -hw), (hl, -hw)):
            px = cx + ex * cpsi - ey * spsi
            py = cy + ex * spsi + ey * cpsi
            for pz in (solid.z0 - lz, solid.top - lz):
                d = px * fx + pz * fz
                if d <= NEAR:
                    straddles = True
                    continue
                us.append(hmid - focal * py / d)
                vs.append(vmid - focal * (px * ux + pz * uz) / d)
        if not us:
            continue
        if straddles:
            u0, u1, v0, v1 = 0, width, 0, height
        else:
            u0, u1 = max(math.floor(min(us)), 0), min(math.ceil(max(us)) + 1, width)
            v0, v1 = max(math.floor(min(vs)), 0), min(math.ceil(max(vs)) + 1, height)
            if u0 >= u1 or v0 >= v1:
                continue
        _slab(rays, (v0, v1, u0, u1), (cx, cy, lz), (cpsi, spsi), solid, image, depth)


def _slab(
    rays: Rays,
    rect: tuple[int, int, int, int],
    centre: tuple[float, float, float],
    rot: tuple[float, float],
    solid: Solid,
    image: npt.NDArray[np.uint32],
    depth_buffer: npt.NDArray[np.float32],
) -> None:
    v0, v1, u0, u1 = rect
    cx, cy, lz = centre
    cpsi, spsi = rot
    dxs, dys, dzs = rays.dx[v0:v1, u0:u1], rays.dy[v0:v1, u0:u1], rays.dz[v0:v1, u0:u1]
    ox = -(cpsi * cx + spsi * cy)
    oy = spsi * cx - cpsi * cy
    oz = lz - solid.z0
    bx = cpsi * dxs + spsi * dys
    by = cpsi * dys - spsi * dxs
    hl, hw = solid.length / 2.0, solid.width / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        tx1, tx2 = (-hl - ox) / bx, (hl - ox) / bx
        ty1, ty2 = (-hw - oy) / by, (hw - oy) / by
        tz1, tz2 = (0.0 - oz) / dzs, (solid.height - oz) / dzs
    tminx, tminy, tminz = np.minimum(tx1, tx2), np.minimum(ty1, ty2), np.minimum(tz1, tz2)
    enter = np.maximum(np.maximum(tminx, tminy), tminz)
    leave = np.minimum(np.minimum(np.maximum(tx1, tx2), np.maximum(ty1, ty2)), np.maximum(tz1, tz2))
    depth = depth_buffer[v0:v1, u0:u1]
    hit = (enter < leave) & (enter > NEAR) & (enter < depth)
    if not hit.any():
        return
    end, side, top = _shades(solid.rgb)
    colour = np.where(
        tminz >= np.maximum(tminx, tminy), np.uint32(top), np.where(tminx >= tminy, np.uint32(end), np.uint32(side))
    )
    np.copyto(image[v0:v1, u0:u1], colour, where=hit)
    np.copyto(depth, enter, where=hit)


def paint_from_above(
    solids: Sequence[Solid],
    image: npt.NDArray[np.uint32],
    to_pixel: tuple[float, float, float],
) -> None:
    """Orthographic top view: solids painted lowest top first; ``to_pixel`` = (x0, y_top, metres per pixel)."""
    x0, y_top, scale = to_pixel
    height, width = image.shape
    for solid in sorted(solids, key=lambda sd: sd.top):
        corners = np.array(
            [[a, b] for a in (-solid.length / 2, solid.length / 2) for b in (-solid.width / 2, solid.width / 2)]
        )
        c, s = math.cos(solid.yaw), math.sin(solid.yaw)
        wx = solid.x + corners[:, 0] * c - corners[:, 1] * s
        wy = solid.y + corners[:, 0] * s + corners[:, 1] * c
        cols, rows = (wx - x0) / scale, (y_top - wy) / scale
        u0, u1 = max(int(cols.min()), 0), min(math.ceil(cols.max()) + 1, width)
        v0, v1 = max(int(rows.min()), 0), min(math.ceil(rows.max()) + 1, height)
        if u0 >= u1 or v0 >= v1:
            continue
        px = x0 + (np.arange(u0, u1) + 0.5) * scale - solid.x
        py = y_top - (np.arange(v0, v1) + 0.5) * scale - solid.y
        fx = px[None, :] * c + py[:, None] * s
        fy = -px[None, :] * s + py[:, None] * c
        inside = (np.abs(fx) <= solid.length / 2) & (np.abs(fy) <= solid.width / 2)
        image[v0:v1, u0:u1][inside] = np.uint32(_shades(solid.rgb)[2])
