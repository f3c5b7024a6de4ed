"""The one encoder of a race's video: RGBA frames in, encoded packets (bytes + timing) out.

VP8 (libvpx) by default — every browser and OBS's browser source decode it; H.264 (libx264,
baseline, Annex B, which aiortc's H.264 packetizer splits into NAL units) as an option. Real-time
settings: no look-ahead, one thread (the race clock's process must keep the other core), constant
bitrate, a keyframe every ``gop`` frames so a viewer joining between forced keyframes waits at most
that long, and forced keyframes on request.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, cast

import av
import numpy as np
import numpy.typing as npt

Codec = Literal["vp8", "h264"]
CODECS: tuple[Codec, ...] = ("vp8", "h264")
CLOCK_RATE = 90_000  # RTP video clock; packet pts are in these units
TIME_BASE = Fraction(1, CLOCK_RATE)
MIME = {"vp8": "video/VP8", "h264": "video/H264"}


@dataclass(frozen=True)
class Encoded:
    data: bytes
    pts: int  # 90 kHz
    keyframe: bool


class FrameEncoder:
    def __init__(self, codec: Codec, width: int, height: int, fps: int, bitrate: int, gop: int) -> None:
        if codec not in CODECS:
            raise ValueError(f"codec: {codec!r}; allowed values: {', '.join(CODECS)}")
        self.codec = codec
        name = "libvpx" if codec == "vp8" else "libx264"
        ctx = cast(av.VideoCodecContext, av.CodecContext.create(name, "w"))
        ctx.width, ctx.height = width, height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = TIME_BASE
        ctx.framerate = Fraction(fps, 1)
        ctx.bit_rate = bitrate
        ctx.gop_size = gop
        ctx.thread_count = 1
        if codec == "vp8":
            ctx.options = {
                "deadline": "realtime",
                "cpu-used": "16",  # libvpx's fastest real-time setting: 2.5x faster than 8 at the same size here
                "lag-in-frames": "0",
                "static-thresh": "1",
                "error-resilient": "1",
                "undershoot-pct": "100",
                "overshoot-pct": "15",
                "bufsize": str(bitrate),
                "maxrate": str(bitrate),
            }
        else:
            ctx.profile = "Baseline"
            ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "level": "31", "bf": "0"}
        self._ctx = ctx
        self.frames = 0

    def encode(self, rgba: npt.NDArray[np.uint8], pts: int, force_keyframe: bool = False) -> list[Encoded]:
        frame = av.VideoFrame.from_ndarray(rgba, format="rgba").reformat(format="yuv420p")
        frame.pts = pts
        frame.time_base = TIME_BASE
        if force_keyframe:
            frame.pict_type = av.video.frame.PictureType.I
        self.frames += 1
        return [
            Encoded(bytes(p), int(p.pts if p.pts is not None else pts), bool(p.is_keyframe))
            for p in self._ctx.encode(frame)
        ]
