"""The latency probe: each frame's capture time, drawn as a block code in its bottom-left corner.

40 blocks of 8 x 8 pixels (two rows of 20, aligned to the codec's macroblocks so they survive
compression): the low 32 bits of the capture time in Unix milliseconds, then an 8-bit check (the
sum of those four bytes). A page reads it back with ``requestVideoFrameCallback`` and a canvas
(``web/video-probe.js`` in tests), an aiortc viewer from the decoded frame; capture → display is
then ``Date.now()`` minus the code, on one machine's clock.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BLOCK = 8
COLUMNS = 20
BITS = 40
WIDTH = BLOCK * COLUMNS
HEIGHT = BLOCK * (BITS // COLUMNS)
MODULUS = 1 << 32


def _bits(ms: int) -> list[int]:
    value = ms % MODULUS
    check = sum(value.to_bytes(4, "little")) & 0xFF
    word = value | (check << 32)
    return [(word >> i) & 1 for i in range(BITS)]


def stamp(frame: npt.NDArray[np.uint8], unix_ms: int) -> None:
    """Draw the code for ``unix_ms`` into the bottom-left corner of an (H, W, 3+) frame."""
    top = frame.shape[0] - HEIGHT
    for i, bit in enumerate(_bits(unix_ms)):
        row, col = divmod(i, COLUMNS)
        y, x = top + row * BLOCK, col * BLOCK
        frame[y : y + BLOCK, x : x + BLOCK, :3] = 255 if bit else 0


def read(frame: npt.NDArray[np.uint8]) -> int | None:
    """The capture time (low 32 bits of Unix ms) coded in a decoded frame, or None if unreadable."""
    top = frame.shape[0] - HEIGHT
    word = 0
    for i in range(BITS):
        row, col = divmod(i, COLUMNS)
        y, x = top + row * BLOCK + 2, col * BLOCK + 2
        luma = float(frame[y : y + BLOCK - 4, x : x + BLOCK - 4, :3].mean())
        if luma >= 128.0:
            word |= 1 << i
    value, check = word & (MODULUS - 1), word >> 32
    if check != sum(value.to_bytes(4, "little")) & 0xFF:
        return None
    return value


def age_ms(code: int, now_unix_ms: int) -> int:
    """Milliseconds from the coded capture time to ``now_unix_ms`` (same clock), across the wrap."""
    return (now_unix_ms - code) % MODULUS
