"""Cars' cameras received over WebRTC (WHIP style): one aiortc peer per car, the newest frame of
each car kept (latest frame wins, as the broadcast wants) for the broadcast to show.

``CarVideo.ingest(car_id, offer_sdp)`` answers the car's offer; frames are decoded in a task and
kept as 120 x 160 grey arrays with their arrival time (``latest(car_id)``) and handed to the car's
watcher, if any: the video of the race the car drives on (``watch`` / ``unwatch``; a watcher
outlives the car's reconnects). A car's new offer replaces its old peer; ``drop(car_id)`` (the car
unlinked) and ``close()`` release peers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger("trackside.fleet")
Watcher = Callable[[NDArray[np.uint8]], None]
MAX_OFFER_BYTES = 64 * 1024


@dataclass(eq=False)
class CarFeed:
    pc: Any
    frames: int = 0
    latest: NDArray[np.uint8] | None = None
    latest_at: float | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class CarVideo:
    def __init__(self) -> None:
        self.feeds: dict[int, CarFeed] = {}
        self.watchers: dict[int, Watcher] = {}

    def watch(self, car_id: int, watcher: Watcher) -> None:
        self.watchers[car_id] = watcher

    def unwatch(self, car_id: int, watcher: Watcher) -> None:
        if self.watchers.get(car_id) == watcher:
            del self.watchers[car_id]

    def latest(self, car_id: int) -> tuple[NDArray[np.uint8], float] | None:
        feed = self.feeds.get(car_id)
        if feed is None or feed.latest is None or feed.latest_at is None:
            return None
        return feed.latest, feed.latest_at

    async def ingest(self, car_id: int, offer_sdp: str) -> str:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        await self.drop(car_id)
        pc = RTCPeerConnection()
        feed = CarFeed(pc)
        self.feeds[car_id] = feed

        @pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind == "video":
                task = asyncio.create_task(self._receive(car_id, feed, track), name=f"car-{car_id}-video")
                feed.tasks.add(task)
                task.add_done_callback(feed.tasks.discard)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        answer: str = pc.localDescription.sdp
        return answer

    async def _receive(self, car_id: int, feed: CarFeed, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError

        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                grey = frame.to_ndarray(format="gray")
                feed.latest = np.asarray(grey, dtype=np.uint8)
                feed.latest_at = time.time()
                feed.frames += 1
                watcher = self.watchers.get(car_id)
                if watcher is not None:
                    try:
                        watcher(feed.latest)
                    except Exception:  # the broadcast is a spectator: the car's feed goes on
                        log.exception("car %s: its camera frame could not be shown", car_id)

    async def drop(self, car_id: int) -> None:
        feed = self.feeds.pop(car_id, None)
        if feed is None:
            return
        for task in list(feed.tasks):
            task.cancel()
        await asyncio.gather(*feed.tasks, return_exceptions=True)
        await feed.pc.close()

    async def close(self) -> None:
        for car_id in list(self.feeds):
            await self.drop(car_id)
