"""aiortc viewer peers for the stream tests: offer recvonly video, read frames and their probe codes."""

# ruff: noqa: ASYNC109  (a per-wait deadline is the point of these helpers)

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from race_server.stream import probe

Answerer = Callable[[str], Awaitable[str]]


@dataclass
class Viewer:
    pc: RTCPeerConnection
    track: MediaStreamTrack | None = None
    frames: int = 0
    widths: set[int] = field(default_factory=set)
    ages_ms: list[int] = field(default_factory=list)
    first_frame_s: float | None = None

    async def read(self, count: int, timeout: float = 30.0) -> None:
        """Receive ``count`` frames, checking each carries a readable capture time."""
        assert self.track is not None
        started = time.monotonic()
        for _ in range(count):
            frame = await asyncio.wait_for(self.track.recv(), timeout)
            if self.first_frame_s is None:
                self.first_frame_s = time.monotonic() - started
            image = frame.to_ndarray(format="rgb24")  # type: ignore[union-attr]
            self.widths.add(image.shape[1])
            code = probe.read(image)
            assert code is not None, "a frame without a readable capture time"
            self.ages_ms.append(probe.age_ms(code, round(time.time() * 1000)))
            self.frames += 1

    async def close(self) -> None:
        await self.pc.close()


async def connect(answer: Answerer, timeout: float = 30.0) -> Viewer:
    """A viewer peer whose offer is answered by ``answer`` (WHEP over HTTP, or the hub directly)."""
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    viewer = Viewer(pc)
    arrived = asyncio.get_running_loop().create_future()

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        viewer.track = track
        if not arrived.done():
            arrived.set_result(None)

    await pc.setLocalDescription(await pc.createOffer())
    sdp = await answer(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
    await asyncio.wait_for(arrived, timeout)
    return viewer
