"""Sprites: small premultiplied RGBA patches blended onto a frame, and the cached text that makes them.

A frame costs a few sprite blends over small rectangles, never a full-frame pass. Text is drawn
anti-aliased by Pillow (FreeType) in the bundled DejaVu Sans Condensed Bold and kept in an LRU
cache, so a label is rasterised once and a clock only when its digits change. Panels, the track map
and the flag are drawn supersampled then reduced, which anti-aliases their edges.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

FONT_PATH = Path(__file__).with_name("fonts") / "DejaVuSansCondensed-Bold.ttf"
RGB = tuple[int, int, int]
SUPERSAMPLE = 4


@dataclass(frozen=True, eq=False)
class Sprite:
    """``weighted`` = colour x alpha and ``inverse`` = 255 - alpha, as uint16 (h, w, 4) so blending is
    exact integer arithmetic over whole contiguous RGBA rows; the fourth channel keeps alpha 255."""

    weighted: npt.NDArray[np.uint16]
    inverse: npt.NDArray[np.uint16]

    def __post_init__(self) -> None:
        if self.weighted.shape[-1] == 3:  # widen to RGBA: an opaque frame stays opaque
            alpha_x255 = (255 - self.inverse) * 255
            object.__setattr__(
                self, "weighted", np.ascontiguousarray(np.concatenate([self.weighted, alpha_x255], axis=-1))
            )
            wide = np.repeat(self.inverse, 4, axis=-1) if self.inverse.shape[-1] == 1 else self.inverse
            object.__setattr__(self, "inverse", np.ascontiguousarray(wide, dtype=np.uint16))

    @property
    def height(self) -> int:
        return int(self.weighted.shape[0])

    @property
    def width(self) -> int:
        return int(self.weighted.shape[1])

    @staticmethod
    def from_rgba(rgba: npt.NDArray[np.uint8]) -> Sprite:
        alpha = rgba[..., 3:4].astype(np.uint16)
        return Sprite(rgba[..., :3].astype(np.uint16) * alpha, (255 - alpha).astype(np.uint16))

    @staticmethod
    def from_mask(mask: npt.NDArray[np.uint8], rgb: RGB, opacity: float = 1.0) -> Sprite:
        alpha = np.rint(mask.astype(np.float32) * opacity).astype(np.uint16)[..., None]
        colour = np.array(rgb, dtype=np.uint16)
        return Sprite(colour * alpha, (255 - alpha).astype(np.uint16))


def blend(frame: npt.NDArray[np.uint8], sprite: Sprite, x: int, y: int) -> None:
    """Alpha-blend ``sprite`` onto ``frame`` (H, W, 3+) with its top-left at (x, y), clipped."""
    fh, fw = frame.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + sprite.width, fw), min(y + sprite.height, fh)
    if x0 >= x1 or y0 >= y1:
        return
    sx, sy = x0 - x, y0 - y
    channels = frame.shape[2]
    region = frame[y0:y1, x0:x1]
    mixed = region * sprite.inverse[sy : sy + y1 - y0, sx : sx + x1 - x0, :channels]
    mixed += sprite.weighted[sy : sy + y1 - y0, sx : sx + x1 - x0, :channels]
    # x // 255 for 0 <= x < 65535 without a division: (x + 1 + (x >> 8)) >> 8
    high = mixed >> 8
    mixed += high
    mixed += 1
    mixed >>= 8
    region[...] = mixed


def rounded_panel(width: int, height: int, rgb: RGB, opacity: float, radius: int = 10) -> Sprite:
    k = SUPERSAMPLE
    big = Image.new("L", (width * k, height * k), 0)
    ImageDraw.Draw(big).rounded_rectangle((0, 0, width * k - 1, height * k - 1), radius=radius * k, fill=255)
    mask = np.asarray(big.resize((width, height), Image.Resampling.LANCZOS))
    return Sprite.from_mask(mask, rgb, opacity)


def disc(diameter: int, rgb: RGB, ring: RGB | None = None) -> Sprite:
    k = SUPERSAMPLE
    size = diameter * k
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    if ring is not None:
        draw.ellipse((0, 0, size - 1, size - 1), fill=(*ring, 255))
        pad = size // 6
        draw.ellipse((pad, pad, size - 1 - pad, size - 1 - pad), fill=(*rgb, 255))
    else:
        draw.ellipse((0, 0, size - 1, size - 1), fill=(*rgb, 255))
    return _premultiplied_reduce(img, diameter, diameter)


def _premultiplied_reduce(img: Image.Image, width: int, height: int) -> Sprite:
    """Downscale an RGBA image without dark fringes: average colour x alpha, not colour."""
    arr = np.asarray(img).astype(np.float32)
    k_h, k_w = arr.shape[0] // height, arr.shape[1] // width
    alpha = arr[..., 3:4] / 255.0
    weighted = (arr[..., :3] * alpha).reshape(height, k_h, width, k_w, 3).mean(axis=(1, 3))
    a = alpha.reshape(height, k_h, width, k_w, 1).mean(axis=(1, 3))
    return Sprite(np.rint(weighted * 255.0).astype(np.uint16), np.rint(255.0 - a * 255.0).astype(np.uint16))


def from_image(img: Image.Image, width: int, height: int) -> Sprite:
    return _premultiplied_reduce(img, width, height)


class Text:
    """Anti-aliased text sprites in the bundled font, cached by (text, size, colour)."""

    def __init__(self, capacity: int = 512) -> None:
        self._fonts: dict[int, ImageFont.FreeTypeFont] = {}
        self._cache: OrderedDict[tuple[str, int, RGB], Sprite] = OrderedDict()
        self.capacity = capacity

    def font(self, size: int) -> ImageFont.FreeTypeFont:
        font = self._fonts.get(size)
        if font is None:
            font = ImageFont.truetype(str(FONT_PATH), size)
            self._fonts[size] = font
        return font

    def width(self, text: str, size: int) -> int:
        return round(self.font(size).getlength(text))

    def sprite(self, text: str, size: int, rgb: RGB = (255, 255, 255)) -> Sprite:
        key = (text, size, rgb)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        font = self.font(size)
        ascent, descent = font.getmetrics()
        width = max(self.width(text, size), 1) + 2
        img = Image.new("L", (width, ascent + descent), 0)
        ImageDraw.Draw(img).text((1, 0), text, font=font, fill=255)
        sprite = Sprite.from_mask(np.asarray(img), rgb)
        self._cache[key] = sprite
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return sprite
