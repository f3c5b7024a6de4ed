"""One RGB video frame per simulator step: the car's front camera beside a top-down track map.

Layout (``FRAME_WIDTH`` x ``FRAME_HEIGHT`` = 1120 x 480, both even as H.264 4:2:0 needs):
left 640 x 480, the front camera's 160 x 120 grey view upscaled 4x (nearest pixel) and exactly what
the policy sees in evaluation (same camera model and mount, no domain randomisation);
right 480 x 480, the track seen from above (north up), rasterised once per track, with the car as
a red dot and obstacles / bot cars as orange dots.

Pure: numpy and the simulator only, so the encoder (`trainer.video`) is the only part that needs a
video library.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from race_server.sim.camera import Camera
from race_server.sim.env import CAMERA_SHAPE
from race_server.sim.objects import Box
from race_server.sim.texture import (
    BORDER_GREY,
    BORDER_RGB,
    CENTRE_GREY,
    CENTRE_RGB,
    FIELD_GREY,
    FIELD_RGB,
    ROAD_GREY,
    ROAD_RGB,
    rasterize_track,
)
from race_server.sim.tracks import Track

CAMERA_SCALE = 4
CAMERA_PANEL = (CAMERA_SHAPE[0] * CAMERA_SCALE, CAMERA_SHAPE[1] * CAMERA_SCALE)  # (480, 640)
MAP_SIZE = CAMERA_PANEL[0]
FRAME_HEIGHT = CAMERA_PANEL[0]
FRAME_WIDTH = CAMERA_PANEL[1] + MAP_SIZE
MAP_MARGIN = 0.3  # metres of field around the track on the map
CAR_RGB = (220, 30, 30)
OBJECT_RGB = (255, 150, 20)
CAR_RADIUS = 6  # map pixels
OBJECT_RADIUS = 4


def _palette() -> NDArray[np.uint8]:
    """Grey texture level -> RGB, so the map shows the texture's colours instead of their luma."""
    lut = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    for grey, rgb in (
        (FIELD_GREY, FIELD_RGB),
        (ROAD_GREY, ROAD_RGB),
        (CENTRE_GREY, CENTRE_RGB),
        (BORDER_GREY, BORDER_RGB),
    ):
        lut[grey] = rgb
    return lut


class TrackMap:
    """A track drawn from above into a square RGB panel, with a world -> pixel transform."""

    def __init__(self, track: Track, size: int = MAP_SIZE) -> None:
        points = np.vstack([track.waypoints, track.inner_border, track.outer_border])
        low = points.min(axis=0) - MAP_MARGIN
        high = points.max(axis=0) + MAP_MARGIN
        self.resolution = float(max(high - low)) / size  # metres per pixel, the longer side fills the panel
        texture = rasterize_track(track, self.resolution, margin=MAP_MARGIN)
        grey = texture.pixels[::-1]  # texture rows grow with y; image rows grow downwards
        rows, cols = min(grey.shape[0], size), min(grey.shape[1], size)
        self.top = (size - rows) // 2
        self.left = (size - cols) // 2
        self.image = np.empty((size, size, 3), dtype=np.uint8)
        self.image[:] = FIELD_RGB
        self.image[self.top : self.top + rows, self.left : self.left + cols] = _palette()[grey[:rows, :cols]]
        self._origin_x = texture.origin_x
        self._top_y = texture.origin_y + grey.shape[0] * self.resolution
        self.size = size

    def pixel(self, x: float, y: float) -> tuple[int, int]:
        """(row, column) of a world point on the panel."""
        col = self.left + int((x - self._origin_x) / self.resolution)
        row = self.top + int((self._top_y - y) / self.resolution)
        return row, col


def draw_dot(image: NDArray[np.uint8], row: int, col: int, radius: int, rgb: tuple[int, int, int]) -> None:
    """Fill a disc, clipped to the image."""
    h, w = image.shape[:2]
    r0, r1 = max(row - radius, 0), min(row + radius + 1, h)
    c0, c1 = max(col - radius, 0), min(col + radius + 1, w)
    if r0 >= r1 or c0 >= c1:
        return
    rr, cc = np.ogrid[r0:r1, c0:c1]
    disc = (rr - row) ** 2 + (cc - col) ** 2 <= radius * radius
    image[r0:r1, c0:c1][disc] = rgb


class FrameComposer:
    """Builds the video frame for a car pose; the camera and map are made once per track."""

    def __init__(self) -> None:
        self._track: Track | None = None
        self._camera: Camera | None = None
        self._map: TrackMap | None = None
        self._frame = np.empty((FRAME_HEIGHT, FRAME_WIDTH, 3), dtype=np.uint8)

    def _for_track(self, track: Track) -> tuple[Camera, TrackMap]:
        if self._track is not track or self._camera is None or self._map is None:
            self._track = track
            self._camera = Camera(track)
            self._map = TrackMap(track)
        return self._camera, self._map

    def compose(self, track: Track, x: float, y: float, yaw: float, boxes: Sequence[Box] = ()) -> NDArray[np.uint8]:
        """(FRAME_HEIGHT, FRAME_WIDTH, 3) uint8 RGB; the returned array is reused by the next call."""
        camera, track_map = self._for_track(track)
        grey = camera.render(x, y, yaw, boxes)
        big = grey.repeat(CAMERA_SCALE, axis=0).repeat(CAMERA_SCALE, axis=1)
        frame = self._frame
        cw = CAMERA_PANEL[1]
        frame[:, :cw] = big[:, :, None]
        panel = frame[:, cw:]
        panel[:] = track_map.image
        for box in boxes:
            draw_dot(panel, *track_map.pixel(box.x, box.y), OBJECT_RADIUS, OBJECT_RGB)
        draw_dot(panel, *track_map.pixel(x, y), CAR_RADIUS, CAR_RGB)
        return frame
