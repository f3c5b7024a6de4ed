"""Fast CPU camera: the DeepRacer front camera as a ground-plane ray caster.

The world a DeepRacer camera sees is a flat textured ground (the track) plus a few boxes (obstacles
and bot cars), so an exact pinhole rendering needs no rasteriser:

* Every pixel's ray is fixed in the car frame. Rays below the horizon hit the ground at a fixed
  offset from the camera; those offsets are computed once. Per frame they are rotated by the car's
  yaw, shifted by the camera position and used to gather from a pre-rasterised track texture
  (`texture.rasterize_track`, 1 cm/texel, nearest texel). Rays above the horizon show a flat sky/wall
  grey.
* Boxes are intersected analytically (ray / oriented box slab test), only for the pixels inside
  the box's projected bounding rectangle; the nearest hit wins and always hides the ground behind.

Camera model (pinhole, square pixels): focal length f = (W/2) / tan(hfov/2) pixels; pixel (u, v)
(column, row; row 0 at the top) looks through image-plane point (u + 0.5 - W/2, v + 0.5 - H/2).
The camera looks along the car's heading pitched down by -pitch radians.

Mount: the DeepRacer car description (aws-deepracer ``deepracer_description`` xacro) puts the camera
link 0.0917 m forward and 0.080 m above the chassis frame, pitched 0.2618 rad down, with the optical
frame a further 0.0448 m forward / 0.04 m up in the pitched frame. The chassis frame is midway
between the axles, which is the car origin used by `world.World`, so the lens is 0.145 m ahead of
the car origin and about 0.13 m above the ground (`CAMERA_MOUNT_FORWARD`, `CAMERA_MOUNT_HEIGHT`).
Stereo cameras sit 0.03 m either side of that point.

A MuJoCo-rendered mode (mujoco.Renderer on the World's model) is not implemented: it needs an
OpenGL context (EGL / OSMesa) per process and is far slower per frame on a CPU. This class is the
fast path for training and racing; a MuJoCo renderer could be added behind the same `render` call.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from race_server.sim.objects import Box
from race_server.sim.texture import SKY_GREY, TrackTexture, luma, rasterize_track
from race_server.sim.tracks import Track

CAMERA_MOUNT_FORWARD = 0.145  # metres ahead of the car origin
CAMERA_MOUNT_HEIGHT = 0.13  # metres above the ground
STEREO_BASELINE = 0.06  # metres between the two stereo lenses
DEFAULT_HFOV = 1.13
DEFAULT_PITCH = -0.2618
TEXTURE_RESOLUTION = 0.01  # metres per texel

BOX_RGB = (215, 200, 170)  # cardboard
BOT_RGB = (230, 100, 30)  # orange shell
# Face brightness by box axis: ends (x faces), long sides (y faces) and top always differ, so the
# corners of a box stay visible from any side (a fixed sun would leave some views flat).
_SHADE_X, _SHADE_Y, _SHADE_TOP = 0.72, 0.88, 1.0
_NEAR = 1e-3  # metres: corners closer to the image plane than this count as behind the camera


@dataclass(frozen=True)
class DomainRandomization:
    """Per-frame image perturbations, all drawn from the rng passed to `render`."""

    brightness: float = 0.0  # gain drawn from [1 - brightness, 1 + brightness]
    noise_std: float = 0.0  # grey levels, independent gaussian noise per pixel
    texture_jitter: float = 0.0  # metres: random shift of where the ground texture is sampled

    def __post_init__(self) -> None:
        for name in ("brightness", "noise_std", "texture_jitter"):
            value = getattr(self, name)
            if not (value >= 0.0) or not math.isfinite(value):
                raise ValueError(f"{name}: {value!r}; allowed values: finite and >= 0")
        if self.brightness >= 1.0:
            raise ValueError(f"brightness: {self.brightness!r}; allowed values: 0 <= brightness < 1")


_TEXTURES: weakref.WeakKeyDictionary[Track, dict[float, TrackTexture]] = weakref.WeakKeyDictionary()


def track_texture(track: Track, resolution: float = TEXTURE_RESOLUTION) -> TrackTexture:
    """The track's ground texture, rasterised once per track object and resolution."""
    per_track = _TEXTURES.setdefault(track, {})
    texture = per_track.get(resolution)
    if texture is None:
        texture = rasterize_track(track, resolution)
        per_track[resolution] = texture
    return texture


class Camera:
    """A DeepRacer-style greyscale camera rendering (height, width) uint8 frames."""

    def __init__(
        self,
        track: Track,
        *,
        width: int = 160,
        height: int = 120,
        hfov: float = DEFAULT_HFOV,
        pitch: float = DEFAULT_PITCH,
        mount_forward: float = CAMERA_MOUNT_FORWARD,
        mount_height: float = CAMERA_MOUNT_HEIGHT,
        randomization: DomainRandomization | None = None,
        texture: TrackTexture | None = None,
    ) -> None:
        if width < 1 or height < 1:
            raise ValueError(f"width, height: {width}x{height}; allowed values: >= 1")
        if not (0.0 < hfov < math.pi):
            raise ValueError(f"hfov: {hfov!r}; allowed values: 0 < hfov < pi")
        if not (mount_height > 0.0):
            raise ValueError(f"mount_height: {mount_height!r}; allowed values: > 0")
        self.track = track
        self.width = width
        self.height = height
        self.hfov = hfov
        self.pitch = pitch
        self.mount_forward = mount_forward
        self.mount_height = mount_height
        self.randomization = randomization
        self.texture = texture if texture is not None else track_texture(track)
        self.focal = (width / 2.0) / math.tan(hfov / 2.0)

        # per-pixel ray directions in the car frame (x forward, y left, z up)
        a = (np.arange(width) + 0.5 - width / 2.0) / self.focal
        b = (np.arange(height) + 0.5 - height / 2.0) / self.focal
        down = -pitch
        cp, sp = math.cos(down), math.sin(down)
        self._axis_forward = np.array([cp, 0.0, -sp])
        self._axis_up = np.array([sp, 0.0, cp])
        dx = np.broadcast_to(cp - b[:, None] * sp, (height, width))
        dy = np.broadcast_to(-a[None, :], (height, width))
        dz = np.broadcast_to(-sp - b[:, None] * cp, (height, width))
        self._dx = np.ascontiguousarray(dx, dtype=np.float32)
        self._dy = np.ascontiguousarray(dy, dtype=np.float32)
        self._dz = np.ascontiguousarray(dz, dtype=np.float32)
        with np.errstate(divide="ignore"):
            self._inv_dz = (1.0 / self._dz).astype(np.float32)
        # ray parameter where each ray meets the ground (negative for rays going up)
        self._t_ground = (-mount_height * self._inv_dz).astype(np.float32)
        # widest horizontal angle of any pixel ray, for culling boxes outside the view
        widest = float(np.max(np.abs(np.arctan2(self._dy, self._dx))))
        self._edge_sin, self._edge_cos = math.sin(widest), math.cos(widest)

        # the ground is seen by whole rows (no roll): rows from `first_ground_row` down
        row_dz = -sp - b * cp
        ground_rows = np.flatnonzero(row_dz < -1e-9)
        self.first_ground_row = int(ground_rows[0]) if len(ground_rows) else height
        start = self.first_ground_row * width
        self._ground_start = start
        t = mount_height / -self._dz.reshape(-1)[start:].astype(np.float64)
        res = self.texture.resolution
        n = height * width - start
        self._ground = np.empty((3, n), dtype=np.float32)  # ground offsets in texels, plus ones
        self._ground[0] = t * self._dx.reshape(-1)[start:] / res
        self._ground[1] = t * self._dy.reshape(-1)[start:] / res
        self._ground[2] = 1.0

        tex = self.texture.pixels
        self._tex_flat = np.ascontiguousarray(tex).reshape(-1)
        self._tex_cols = tex.shape[1]
        self._tex_hi = np.array([[tex.shape[1] - 1], [tex.shape[0] - 1]], dtype=np.float32)
        self._tex_lo = np.zeros((2, 1), dtype=np.float32)
        self._coords = np.empty((2, n), dtype=np.float32)
        self._icoords = np.empty((2, n), dtype=np.intp)
        self._index = np.empty(n, dtype=np.intp)
        self._affine = np.empty((2, 3), dtype=np.float32)
        self._image = np.full((height, width), SKY_GREY, dtype=np.uint8)
        self._depth = np.empty((height, width), dtype=np.float32)
        self._sky_dirty = False  # a box was drawn above the horizon, which ground drawing does not repaint

    # -- geometry -------------------------------------------------------------------------------
    def lens_position(self, x: float, y: float, yaw: float, lateral: float = 0.0) -> tuple[float, float]:
        """World (x, y) of the lens for a car origin pose; ``lateral`` shifts it left."""
        c, s = math.cos(yaw), math.sin(yaw)
        return (x + c * self.mount_forward - s * lateral, y + s * self.mount_forward + c * lateral)

    def project(
        self, points: npt.NDArray[np.float64], x: float, y: float, yaw: float, lateral: float = 0.0
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """World points (K, 3) -> pixel coordinates (K, 2) as (column, row) and depth along the axis (K,)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        lx, ly = self.lens_position(x, y, yaw, lateral)
        c, s = math.cos(yaw), math.sin(yaw)
        rx, ry = p[:, 0] - lx, p[:, 1] - ly
        car = np.stack([c * rx + s * ry, -s * rx + c * ry, p[:, 2] - self.mount_height], axis=1)
        depth = car @ self._axis_forward
        left = car[:, 1]
        up = car @ self._axis_up
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.width / 2.0 - 0.5 - self.focal * left / depth
            v = self.height / 2.0 - 0.5 - self.focal * up / depth
        return np.stack([u, v], axis=1), depth

    # -- rendering ------------------------------------------------------------------------------
    def render(
        self,
        x: float,
        y: float,
        yaw: float,
        boxes: Sequence[Box] = (),
        lateral: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> npt.NDArray[np.uint8]:
        """(height, width) uint8 grey frame for the car origin pose (x, y, yaw)."""
        lx, ly = self.lens_position(x, y, yaw, lateral)
        dr = self.randomization if rng is not None else None
        if dr is not None and dr.texture_jitter > 0.0 and rng is not None:
            jx, jy = rng.uniform(-dr.texture_jitter, dr.texture_jitter, size=2)
            gx, gy = lx + float(jx), ly + float(jy)
        else:
            gx, gy = lx, ly
        if self._sky_dirty:
            self._image[: self.first_ground_row] = SKY_GREY
            self._sky_dirty = False
        self._draw_ground(gx, gy, yaw)
        if boxes:
            self._draw_boxes(lx, ly, yaw, boxes)
        image = self._image
        if dr is not None and rng is not None and (dr.brightness > 0.0 or dr.noise_std > 0.0):
            frame = image.astype(np.float32)
            if dr.brightness > 0.0:
                frame *= np.float32(rng.uniform(1.0 - dr.brightness, 1.0 + dr.brightness))
            if dr.noise_std > 0.0:
                frame += rng.normal(0.0, dr.noise_std, size=frame.shape).astype(np.float32)
            np.clip(frame, 0.0, 255.0, out=frame)
            return np.rint(frame).astype(np.uint8)
        return image.copy()

    def _draw_ground(self, lx: float, ly: float, yaw: float) -> None:
        tex = self.texture
        inv = 1.0 / tex.resolution
        c, s = math.cos(yaw), math.sin(yaw)
        m = self._affine
        m[0, 0], m[0, 1], m[0, 2] = c, -s, (lx - tex.origin_x) * inv
        m[1, 0], m[1, 1], m[1, 2] = s, c, (ly - tex.origin_y) * inv
        coords = self._coords
        np.matmul(m, self._ground, out=coords)
        np.clip(coords, self._tex_lo, self._tex_hi, out=coords)
        icoords = self._icoords
        np.copyto(icoords, coords, casting="unsafe")  # truncation == floor: coords are >= 0
        index = self._index
        np.multiply(icoords[1], self._tex_cols, out=index)
        np.add(index, icoords[0], out=index)
        ground = self._image.reshape(-1)[self._ground_start :]
        np.take(self._tex_flat, index, out=ground)

    def _draw_boxes(self, lx: float, ly: float, yaw: float, boxes: Sequence[Box]) -> None:
        c, s = math.cos(yaw), math.sin(yaw)
        fwd_x, fwd_z = float(self._axis_forward[0]), float(self._axis_forward[2])
        up_x, up_z = float(self._axis_up[0]), float(self._axis_up[2])
        hmid, vmid, focal = self.width / 2.0 - 0.5, self.height / 2.0 - 0.5, self.focal
        edge_s, edge_c = self._edge_sin, self._edge_cos
        depth_cleared = False
        for box in boxes:
            # box centre and yaw in the car frame, relative to the lens
            rx, ry = box.x - lx, box.y - ly
            cx = c * rx + s * ry
            cy = -s * rx + c * ry
            radius = 0.5 * math.hypot(box.length, box.width)
            if cx < -radius:
                continue  # wholly behind the lens
            if -edge_s * cx + edge_c * abs(cy) > radius:
                continue  # wholly outside the widest horizontal angle any pixel sees
            psi = box.yaw - yaw
            cpsi, spsi = math.cos(psi), math.sin(psi)
            hl, hw, h = box.length / 2.0, box.width / 2.0, box.height
            us: list[float] = []
            vs: list[float] = []
            straddles = False
            for ex, ey in ((hl, hw), (-hl, hw), (-hl, -hw), (hl, -hw)):
                px = cx + ex * cpsi - ey * spsi
                py = cy + ex * spsi + ey * cpsi
                for pz in (-self.mount_height, h - self.mount_height):
                    depth = px * fwd_x + pz * fwd_z
                    if depth <= _NEAR:
                        straddles = True
                        continue
                    us.append(hmid - focal * py / depth)
                    vs.append(vmid - focal * (px * up_x + pz * up_z) / depth)
            if not us:
                continue
            if straddles:
                u0, u1, v0, v1 = 0, self.width, 0, self.height
            else:
                u0 = max(math.floor(min(us)), 0)
                u1 = min(math.ceil(max(us)) + 1, self.width)
                v0 = max(math.floor(min(vs)), 0)
                v1 = min(math.ceil(max(vs)) + 1, self.height)
                if u0 >= u1 or v0 >= v1:
                    continue
            if not depth_cleared:
                self._depth.fill(np.inf)
                depth_cleared = True
            self._hit_box((v0, v1, u0, u1), cx, cy, cpsi, spsi, box)

    def _hit_box(
        self, rect: tuple[int, int, int, int], cx: float, cy: float, cpsi: float, spsi: float, box: Box
    ) -> None:
        v0, v1, u0, u1 = rect
        hl, hw = box.length / 2.0, box.width / 2.0
        dxs = self._dx[v0:v1, u0:u1]
        dys = self._dy[v0:v1, u0:u1]
        # lens position and ray directions in the box frame (box centre on the ground)
        ox = -(cpsi * cx + spsi * cy)
        oy = spsi * cx - cpsi * cy
        bx = cpsi * dxs + spsi * dys
        by = cpsi * dys - spsi * dxs
        with np.errstate(divide="ignore", invalid="ignore"):
            tx1, tx2 = (-hl - ox) / bx, (hl - ox) / bx
            ty1, ty2 = (-hw - oy) / by, (hw - oy) / by
        tminx = np.minimum(tx1, tx2)
        tminy = np.minimum(ty1, ty2)
        leave = np.minimum(np.maximum(tx1, tx2), np.maximum(ty1, ty2))
        enter = np.maximum(tminx, tminy)
        t_top = (box.height - self.mount_height) * self._inv_dz[v0:v1, u0:u1]
        t_ground = self._t_ground[v0:v1, u0:u1]
        top_visible = box.height < self.mount_height
        if top_visible:
            np.maximum(enter, np.minimum(t_top, t_ground), out=enter)
        # else the z slab starts behind the lens (lens below the top, above the ground): no entry there
        np.minimum(leave, np.maximum(t_top, t_ground), out=leave)
        # a lens inside the box (a crash) sees its inside faces at ~zero depth
        np.maximum(enter, _NEAR, out=enter)
        depth = self._depth[v0:v1, u0:u1]
        np.minimum(leave, depth, out=leave)
        hit = enter < leave
        if not hit.any():
            return
        grey = luma(BOT_RGB if box.is_bot else BOX_RGB)
        shade = np.where(tminx >= tminy, grey * _SHADE_X, grey * _SHADE_Y)
        if top_visible:
            np.copyto(shade, grey * _SHADE_TOP, where=enter > np.maximum(tminx, tminy))
        np.copyto(self._image[v0:v1, u0:u1], shade, casting="unsafe", where=hit)
        np.copyto(depth, enter, where=hit)
        if v0 < self.first_ground_row:
            self._sky_dirty = True


class StereoCamera:
    """Two cameras `STEREO_BASELINE` apart; frames stacked (height, width, 2): left lens, then right."""

    def __init__(
        self,
        track: Track,
        *,
        baseline: float = STEREO_BASELINE,
        width: int = 160,
        height: int = 120,
        hfov: float = DEFAULT_HFOV,
        pitch: float = DEFAULT_PITCH,
        mount_forward: float = CAMERA_MOUNT_FORWARD,
        mount_height: float = CAMERA_MOUNT_HEIGHT,
        randomization: DomainRandomization | None = None,
    ) -> None:
        self.baseline = baseline
        self.camera = Camera(
            track,
            width=width,
            height=height,
            hfov=hfov,
            pitch=pitch,
            mount_forward=mount_forward,
            mount_height=mount_height,
            randomization=randomization,
        )
        self._out = np.empty((height, width, 2), dtype=np.uint8)

    def render(
        self,
        x: float,
        y: float,
        yaw: float,
        boxes: Sequence[Box] = (),
        rng: np.random.Generator | None = None,
    ) -> npt.NDArray[np.uint8]:
        half = self.baseline / 2.0
        out = np.empty_like(self._out)
        out[:, :, 0] = self.camera.render(x, y, yaw, boxes, lateral=half, rng=rng)
        out[:, :, 1] = self.camera.render(x, y, yaw, boxes, lateral=-half, rng=rng)
        return out
