"""A LIVE race's RaceHost, filmed: the race's video follows its simulator without touching its clock.

`filmed_host_factory` wraps the queue service's host factory. The wrapped host starts the race's
encoder process next to the simulator's, hands every simulator event to the picture on its way to
the queue service (a pipe send of a small state: the 15 Hz clock runs in the simulator's own
process and never waits for video), records each run from launch until its replay ends, and stops
the encoder with the simulator. Queue messages the simulator does not see (checkered with the
replay length, replay_ended, up_next, leaderboard) come from the race's bus channel.

A race on a physical track (its host names a ``camera_car``) is filmed by that car: the encoder
shows the car's camera, whose frames the fleet's `CameraFeeds` hand over as they are decoded.

Video is a spectator: if the encoder cannot start or dies, the race goes on without pictures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

import asyncpg
import numpy as np
import numpy.typing as npt

from race_server.bus import BusGap, EventBus
from race_server.db import races
from race_server.live.events import HostEvent, RunEnded
from race_server.races.ranking import Lap
from race_server.stream.service import VideoService

log = logging.getLogger("trackside.stream")
CHANNEL = "race:{}"  # race_server.queue.service.channel
QUEUE_TYPES = frozenset(
    {"run_launched", "checkered", "replay_ended", "run_failed", "up_next", "leaderboard", "leaderboard_cleared"}
)
RECORDING_ENDS = frozenset({"replay_ended", "run_failed"})
CameraWatcher = Callable[[npt.NDArray[np.uint8]], None]


class CameraFeeds(Protocol):
    """The cars' cameras (``race_server.fleet.video.CarVideo``)."""

    def watch(self, car_id: int, watcher: CameraWatcher) -> None: ...

    def unwatch(self, car_id: int, watcher: CameraWatcher) -> None: ...


class FilmedHost:
    """Delegates everything to ``inner`` (a RaceHost); adds the race's video around it."""

    def __init__(
        self,
        inner: Any,
        race_id: int,
        video: VideoService,
        bus: EventBus,
        pool: asyncpg.Pool,
        cameras: CameraFeeds | None = None,
    ) -> None:
        self._inner = inner
        self.race_id = race_id
        self._video = video
        self._bus = bus
        self._pool = pool
        self._cameras = cameras
        self._watching: tuple[int, CameraWatcher] | None = None
        self._follow: asyncio.Task[None] | None = None
        self._ending: set[asyncio.Task[Any]] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def start(self, route_id: str, reverse: bool, laps: Sequence[Lap] = ()) -> None:
        await self._inner.start(route_id, reverse, laps)
        car: int | None = getattr(self._inner, "camera_car", None)
        try:
            stream = await self._video.start(
                self.race_id,
                route_id,
                reverse,
                n_sectors=int(getattr(self._inner, "n_sectors", 3)),
                source="simulator" if car is None else "car",
            )
            if stream is not None and car is not None and self._cameras is not None:
                self._watching = (car, stream.show_camera)
                self._cameras.watch(*self._watching)
            if stream is not None:
                async with self._pool.acquire() as conn:
                    stream.feed.names.update(await races.names(conn, self.race_id))
                self._follow = asyncio.create_task(self._follow_queue(), name=f"video-follow-{self.race_id}")
        except Exception:
            log.exception("race %s: video did not start; the race goes on without it", self.race_id)

    async def launch(self, spec: Any) -> None:
        self._video.begin_recording(self.race_id, int(spec.run_id))
        await self._inner.launch(spec)

    def events(self) -> AsyncIterator[HostEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[HostEvent]:
        async for event in self._inner.events():
            self._video.apply(self.race_id, event.wire)
            if isinstance(event, RunEnded) and event.reason != "time_up":
                self._end_recording()
            yield event

    def _end_recording(self) -> None:
        task = asyncio.create_task(self._video.end_recording(self.race_id))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def _follow_queue(self) -> None:
        while True:
            try:
                async with self._bus.subscribe(CHANNEL.format(self.race_id), max_queue=256) as sub:
                    async for item in sub:
                        if isinstance(item, BusGap) or item.get("type") not in QUEUE_TYPES:
                            continue
                        if item.get("type") == "run_launched":
                            await self._refresh_names()
                        self._video.apply(self.race_id, item)
                        if item.get("type") in RECORDING_ENDS:
                            self._end_recording()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("race %s: video lost the race's channel; resubscribing", self.race_id)
                await asyncio.sleep(0.5)

    async def _refresh_names(self) -> None:
        stream = self._video.stream_for(self.race_id)
        if stream is not None:
            async with self._pool.acquire() as conn:
                stream.feed.names.update(await races.names(conn, self.race_id))

    async def close(self) -> None:
        if self._watching is not None and self._cameras is not None:
            self._cameras.unwatch(*self._watching)
            self._watching = None
        try:
            await self._inner.close()
        finally:
            if self._follow is not None:
                self._follow.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._follow
                self._follow = None
            with contextlib.suppress(Exception):
                await self._video.end_recording(self.race_id)
            await self._video.stop(self.race_id)


def filmed_host_factory(
    inner: Callable[[int], Any],
    video: VideoService,
    bus: EventBus,
    pool: asyncpg.Pool,
    cameras: CameraFeeds | None = None,
) -> Callable[[int], Any]:
    def make(race_id: int) -> Any:
        return FilmedHost(inner(race_id), race_id, video, bus, pool, cameras)

    return make
