"""The picture of a race on a physical track: the car's own camera, under the same overlay.

The car sends what its model sees, 160 x 120 grey at 15 fps. The picture is that image scaled up by
whole pixels (a repeat: sharp, and cheap enough for every frame) and centred on a dark ground; a
camera larger than the picture is thinned by whole steps instead. Until the first frame, or while
the newest is older than `STALE_S` (the car's video is off, or its link is down), a card says so
rather than freezing on an old image.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from race_server.overlay.sprites import Text, blend

STALE_S = 1.0
GROUND = (18, 20, 24)
CAPTION = (200, 205, 215)
WAITING = "Waiting for the car's camera"


class CarCamera:
    def __init__(self, width: int = 1280, height: int = 720) -> None:
        self.width, self.height = width, height
        self.text = Text(capacity=8)
        self._ground = np.empty((height, width, 4), np.uint8)
        self._ground[..., :3] = GROUND
        self._ground[..., 3] = 255

    def draw(self, grey: npt.NDArray[np.uint8] | None, age_s: float | None) -> npt.NDArray[np.uint8]:
        """An RGBA frame of the picture size: the camera image, or the waiting card."""
        frame = self._ground.copy()
        if grey is None or age_s is None or age_s > STALE_S or grey.ndim != 2 or 0 in grey.shape:
            size = max(round(34 * self.height / 720), 10)
            sprite = self.text.sprite(WAITING, size, CAPTION)
            blend(frame, sprite, (self.width - sprite.width) // 2, (self.height - sprite.height) // 2)
            return frame
        image = self._fit(grey)
        h, w = image.shape
        top, left = (self.height - h) // 2, (self.width - w) // 2
        frame[top : top + h, left : left + w, :3] = image[..., None]
        return frame

    def _fit(self, grey: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        h, w = grey.shape
        scale = min(self.height // h, self.width // w)
        if scale >= 1:
            scaled: npt.NDArray[np.uint8] = np.repeat(np.repeat(grey, scale, axis=0), scale, axis=1)
            return scaled
        step = max(math.ceil(h / self.height), math.ceil(w / self.width))
        thinned: npt.NDArray[np.uint8] = grey[::step, ::step]
        return thinned
