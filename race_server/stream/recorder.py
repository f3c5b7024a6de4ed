"""Recording a run from the packets already encoded for viewers: a WebM (Matroska) mux, no second encode.

The file starts at the first keyframe (the encoder is asked for one when recording starts), its
timestamps are the packets' own, in milliseconds from that keyframe. H.264 goes into Matroska
(``.mkv``): WebM allows only VP8/VP9/AV1.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av

from race_server.stream.codec import TIME_BASE, Codec, Encoded


class Recorder:
    def __init__(self, path: Path, codec: Codec, width: int, height: int, fps: int) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".part")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out = av.open(str(self.partial), "w", format="webm" if codec == "vp8" else "matroska")
        stream = self._out.add_stream("libvpx" if codec == "vp8" else "libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        self._stream = stream
        self._origin: int | None = None
        self.frames = 0

    def write(self, packet: Encoded) -> None:
        if self._origin is None:
            if not packet.keyframe:
                return
            self._origin = packet.pts
        out = av.Packet(packet.data)
        out.pts = out.dts = packet.pts - self._origin
        out.time_base = TIME_BASE
        out.is_keyframe = packet.keyframe
        out.stream = self._stream
        self._out.mux(out)
        self.frames += 1

    def close(self) -> int:
        """Finish the file (renamed into place only once complete); returns the frame count."""
        self._out.close()
        if self.frames:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)
        return self.frames
