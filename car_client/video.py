"""The car's camera to the server over WebRTC (aiortc), WHIP style: one SDP offer POSTed to
``/api/car/video`` with the car's token, the answer back, then the camera's frames flow as video
at 15 fps. Optional (``--video``), off by default: encoding costs the car CPU it may need for
inference. aiortc and PyAV are imported only when video is on.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
import urllib.request
from typing import Any

log = logging.getLogger("trackside.car.video")
VIDEO_FPS = 15
CLOCK_RATE = 90_000


def camera_track(backend: Any) -> Any:
    from aiortc import MediaStreamTrack
    from av import VideoFrame

    class CameraTrack(MediaStreamTrack):
        """The newest camera frame at 15 fps (latest frame wins; never waits for the camera)."""

        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self._start: float | None = None
            self._count = 0

        async def recv(self) -> Any:
            if self._start is None:
                self._start = time.monotonic()
            due = self._start + self._count / VIDEO_FPS
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            grey = backend.frame()
            import numpy as np

            pixels = np.zeros((120, 160), np.uint8) if grey is None else np.ascontiguousarray(grey[..., 0])
            frame = VideoFrame.from_ndarray(pixels, format="gray").reformat(format="yuv420p")
            frame.pts = self._count * CLOCK_RATE // VIDEO_FPS
            frame.time_base = fractions.Fraction(1, CLOCK_RATE)
            self._count += 1
            return frame

    return CameraTrack()


class CameraPublisher:
    def __init__(self, http_base: str, token: str, backend: Any) -> None:
        self.url = f"{http_base}/api/car/video"
        self.token = token
        self.backend = backend
        self.pc: Any = None

    async def start(self) -> None:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        pc = RTCPeerConnection()
        self.pc = pc
        pc.addTransceiver(camera_track(self.backend), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers every candidate first
        request = urllib.request.Request(
            self.url,
            data=pc.localDescription.sdp.encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/sdp"},
        )

        def post() -> str:
            with urllib.request.urlopen(request, timeout=20) as response:
                answer: str = response.read().decode()
                return answer

        answer = await asyncio.to_thread(post)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        log.info("camera publishing to %s", self.url)

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()
            self.pc = None
