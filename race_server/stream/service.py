"""The server's video: one `RaceStream` per race with a LIVE simulator or a car on the physical
track (its camera is the picture), the WHEP hub, the recordings.

The race runtime starts a race's stream when its simulator starts (``start``), feeds it every race
event (``apply``: the RaceHost's events and the queue's messages), records each run from launch to
the end of its replay (``begin_recording`` / ``end_recording``) and stops it with the simulator
(``stop``). Recordings are ``<data dir>/recordings/race-<id>/run-<run id>.webm``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, cast

from race_server.overlay import BroadcastState
from race_server.races import folders
from race_server.sim.broadcast import View
from race_server.stream.codec import Codec
from race_server.stream.encoder import EncoderConfig, Source
from race_server.stream.race_stream import RaceStream
from race_server.stream.settings import VideoSettings
from race_server.stream.whep import WhepHub, parse_ice_servers

log = logging.getLogger("trackside.stream")


class VideoService:
    def __init__(self, data_dir: Path, settings: VideoSettings) -> None:
        self.data_dir = data_dir
        self.settings = settings
        self.hub = WhepHub(parse_ice_servers(settings.ice_servers), max_sessions=settings.max_viewers)
        self.streams: dict[int, RaceStream] = {}
        self._recording: dict[int, int] = {}  # race id -> run id being recorded
        self._finished: dict[str, asyncio.Future[dict[str, Any]]] = {}  # path -> {path, frames} or {error}

    def stream_for(self, race_id: int) -> RaceStream | None:
        return self.streams.get(race_id)

    def recording_path(self, race_id: int, run_id: int) -> Path:
        ext = "webm" if self.settings.codec == "vp8" else "mkv"
        return folders.recordings_dir(self.data_dir, race_id) / f"run-{run_id}.{ext}"

    async def start(
        self,
        race_id: int,
        route_id: str,
        reverse: bool = False,
        *,
        n_sectors: int = 3,
        names: Mapping[int, str] | None = None,
        probe: bool = True,
        source: Source = "simulator",
    ) -> RaceStream | None:
        """Start the race's encoder (idempotent); None when video is switched off."""
        if not self.settings.enabled:
            return None
        existing = self.streams.get(race_id)
        if existing is not None and existing.alive and existing.config.source == source:
            return existing
        if existing is not None:  # the race moved between the simulator and a physical track
            await self.stop(race_id)
        s = self.settings
        config = EncoderConfig(
            race_id=race_id,
            route_id=route_id,
            reverse=reverse,
            n_sectors=n_sectors,
            width=s.width,
            height=s.height,
            fps=s.fps,
            codec=cast(Codec, s.codec),
            bitrate=s.bitrate,
            view=cast(View, s.view),
            probe=probe,
            source=source,
        )
        stream = RaceStream(config, on_recorded=lambda info: self._on_recorded(race_id, info))
        await stream.start()
        if names:
            stream.feed.names.update(names)
        self.streams[race_id] = stream
        return stream

    async def stop(self, race_id: int) -> None:
        stream = self.streams.pop(race_id, None)
        self._recording.pop(race_id, None)
        await self.hub.close_race(race_id)
        if stream is not None:
            await stream.close()

    def apply(self, race_id: int, event: Mapping[str, Any]) -> BroadcastState | None:
        stream = self.streams.get(race_id)
        if stream is None or not stream.alive:
            return None
        return stream.apply(event)

    def begin_recording(self, race_id: int, run_id: int) -> Path | None:
        stream = self.streams.get(race_id)
        if stream is None or not stream.alive:
            return None
        path = self.recording_path(race_id, run_id)
        stream.start_recording(path)
        self._recording[race_id] = run_id
        return path

    async def end_recording(self, race_id: int) -> dict[str, Any] | None:
        stream = self.streams.get(race_id)
        if stream is None or self._recording.pop(race_id, None) is None:
            return None
        return await stream.stop_recording()

    def _finish(self, path: str) -> asyncio.Future[dict[str, Any]]:
        future = self._finished.get(path)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._finished[path] = future
        return future

    async def recorded(self, path: Path) -> dict[str, Any]:
        """Wait until the recording at ``path`` is finished (or failed); its {path, frames} or {error}."""
        return await asyncio.shield(self._finish(str(path)))

    def _on_recorded(self, race_id: int, info: Mapping[str, Any]) -> None:
        if info.get("path"):
            future = self._finish(str(info["path"]))
            if not future.done():
                future.set_result(dict(info))
        if info.get("error"):
            log.warning(
                "recording failed", extra={"race_id": race_id, "path": info.get("path"), "error": info["error"]}
            )

    async def close(self) -> None:
        await self.hub.close_all()
        for race_id in list(self.streams):
            await self.stop(race_id)


@contextlib.asynccontextmanager
async def video_service(data_dir: Path, settings: VideoSettings) -> AsyncIterator[VideoService]:
    service = VideoService(data_dir, settings)
    try:
        yield service
    finally:
        await service.close()
