"""A race's video on the server side: its encoder process, and the fan-out of its packets to viewers.

Each frame is encoded once, in the race's encoder process (`race_server.stream.encoder`); here the
packet becomes one ``av.Packet`` handed to every viewer's `ViewerTrack`. aiortc's RTP sender
accepts a pre-encoded packet from ``recv()`` and only packetizes it, so a viewer costs RTP and
SRTP work, never an encode. Live semantics per viewer: a small backlog at most; a viewer that
falls behind loses its backlog and waits for the next keyframe (a broken chain of inter frames
cannot be shown anyway), asking the encoder for one, so it never delays the others.

The encoder process's pipe is watched with ``loop.add_reader``: the event loop never blocks on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import time
from collections import deque
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from race_server.overlay import BroadcastFeed, BroadcastState
from race_server.piped_child import PipedChild
from race_server.sim.broadcast import VIEWS
from race_server.stream.codec import TIME_BASE
from race_server.stream.encoder import EncoderConfig, Packet, encoder_main

log = logging.getLogger("trackside.stream")
START_TIMEOUT_S = 60.0
CLOSE_TIMEOUT_S = 3.0
# Frames a viewer may fall behind before it skips to the next keyframe: a quarter second absorbs the
# burst of sending one keyframe to every viewer; skipping earlier would ask for yet more keyframes.
BACKLOG = 8
# Keyframes are the costliest frames to encode and to send to everyone: requests (joins, viewers
# that fell behind, PLI/FIR) closer together than this are merged into one.
KEYFRAME_REQUEST_GAP_S = 0.5
READ_BATCH = 32


class StreamError(RuntimeError):
    """The encoder process is not running, refused a command, or died."""


class ViewerTrack(MediaStreamTrack):
    """One viewer's video track: hands the shared encoded packets to its RTP sender.

    Nothing is kept before the sender first asks (the peer is still connecting); its first
    ``recv()`` asks the encoder for a keyframe and the viewer's picture starts there."""

    kind = "video"

    def __init__(self, stream: RaceStream) -> None:
        super().__init__()
        self.stream = stream
        self._queue: deque[av.Packet[Any]] = deque()
        self._ready = asyncio.Event()
        self._started = False
        self._need_keyframe = True
        self.delivered = 0
        self.dropped = 0

    def deliver(self, packet: av.Packet[Any], keyframe: bool) -> None:
        if self.readyState != "live" or not self._started:
            return
        if not self._need_keyframe and len(self._queue) >= BACKLOG:
            # too slow: the inter frames after the backlog would decode against missing frames
            self.dropped += len(self._queue)
            self._queue.clear()
            self._need_keyframe = True
            self.stream.request_keyframe()
        if self._need_keyframe:
            if not keyframe:
                self.dropped += 1
                return
            self._need_keyframe = False
        self._queue.append(packet)
        self._ready.set()

    async def recv(self) -> av.Packet[Any]:
        if not self._started:
            self._started = True
            self.stream.request_keyframe()
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        self.delivered += 1
        return self._queue.popleft()

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def stop(self) -> None:
        if self.readyState == "live":
            super().stop()
            self.stream.detach(self)
        self._queue.clear()
        self._ready.set()


class RaceStream:
    """One race's encoder process and its viewers."""

    def __init__(self, config: EncoderConfig, *, on_recorded: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.config = config
        self.race_id = config.race_id
        self.feed = BroadcastFeed(config.n_sectors)
        self.on_recorded = on_recorded
        self._child: PipedChild | None = None
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._recorded: asyncio.Future[dict[str, Any]] | None = None
        self.viewers: set[ViewerTrack] = set()
        self.frames_received = 0
        self.frames_encoded = 0  # the encoder's own count, from the last packet
        self.last_captured = 0.0
        self._last_keyframe_request = 0.0
        self._keyframe_timer: asyncio.TimerHandle | None = None
        self.failed: str | None = None
        self.states_dropped = 0  # states replaced by a newer one before the encoder could take them
        self.camera_frames = 0  # the car's images handed to the encoder (physical track)
        self.camera_dropped = 0  # ... and those dropped because the encoder was behind
        self._unsent: tuple[str, Any] | None = None
        self._closing = False

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    @property
    def _conn(self) -> Connection | None:
        return self._child.conn if self._child is not None else None

    @property
    def alive(self) -> bool:
        return self._conn is not None

    async def start(self) -> None:
        if self._child is not None:
            raise StreamError("the encoder is already started")
        child = PipedChild(
            f"encoder-{self.race_id}",
            encoder_main,
            (self.config,),
            on_message=self._on_message,
            on_gone=self._on_gone,
            read_batch=READ_BATCH,
        )
        self._ready = asyncio.get_running_loop().create_future()
        child.spawn()
        self._child = child
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), START_TIMEOUT_S)
        except BaseException:
            self._ready.cancel()  # nobody waits for it now: not an exception never retrieved
            await self.close()
            raise

    async def close(self) -> None:
        """Stop every viewer, finish a recording, end the process; idempotent."""
        for track in list(self.viewers):
            track.stop()
        if self._keyframe_timer is not None:
            self._keyframe_timer.cancel()
            self._keyframe_timer = None
        child = self._child
        if child is None:
            return
        self._closing = True
        self._send("close", None, quiet=True)
        self._unsent = None
        await child.stop(first_wait_s=CLOSE_TIMEOUT_S, grace_s=CLOSE_TIMEOUT_S)
        self._child = None
        self._fail_waiters("the encoder was closed")

    def _fail_waiters(self, message: str) -> None:
        for future in (self._ready, self._recorded):
            if future is not None and not future.done():
                future.set_exception(StreamError(self.failed or message))

    # --- the pipe ----------------------------------------------------------------------------
    def _send(self, op: str, payload: Any, *, quiet: bool = False, droppable: bool = False) -> None:
        """``droppable`` messages (states) never block the event loop: while the pipe is full (an
        encoder busy or stuck) only the newest waits, and goes out as soon as the pipe drains."""
        conn = self._conn
        if conn is None:
            if quiet:
                return
            raise StreamError(f"the encoder is not running{f' ({self.failed})' if self.failed else ''}")
        if droppable and (self._unsent is not None or not select.select([], [conn.fileno()], [], 0)[1]):
            # keep only the newest; it goes out as soon as the pipe drains
            if self._unsent is None:
                asyncio.get_running_loop().add_writer(conn.fileno(), self._flush)
            else:
                self.states_dropped += 1
            self._unsent = (op, payload)
            return
        try:
            conn.send((op, payload))
        except OSError as error:
            if not quiet:
                raise StreamError(f"the encoder process is gone ({error})") from error

    def _flush(self) -> None:
        conn, unsent, self._unsent = self._conn, self._unsent, None
        if conn is None:
            return
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_writer(conn.fileno())
        if unsent is not None:
            self._send(*unsent, quiet=True)

    def _on_message(self, message: tuple[str, Any]) -> None:
        op, payload = message
        self._dispatch(op, payload)

    def _dispatch(self, op: str, payload: Any) -> None:
        if op == "packet":
            self._fan_out(payload)
        elif op == "ready":
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(payload)
        elif op == "recorded":
            if self._recorded is not None and not self._recorded.done():
                self._recorded.set_result(payload)
            if self.on_recorded is not None:
                self.on_recorded(payload)
        elif op == "fatal":
            self.failed = str(payload)

    def _on_gone(self) -> None:
        child = self._child
        self._unsent = None
        if child is not None:
            child.detach()
        if self._closing:
            return
        proc = child.process if child is not None else None
        code = proc.exitcode if proc is not None else None
        self.failed = self.failed or f"encoder process exited (exit code {code})"
        log.warning("race video stopped", extra={"race_id": self.race_id, "reason": self.failed})
        for track in list(self.viewers):
            track.stop()
        self._fail_waiters(self.failed)

    def _fan_out(self, encoded: Packet) -> None:
        self.frames_received += 1
        self.frames_encoded = encoded.index
        self.last_captured = encoded.captured
        packet = av.Packet(encoded.data)
        packet.pts = packet.dts = encoded.pts
        packet.time_base = TIME_BASE
        for track in list(self.viewers):
            track.deliver(packet, encoded.keyframe)

    # --- viewers -----------------------------------------------------------------------------
    def attach(self, track: ViewerTrack) -> None:
        if self._conn is None:
            raise StreamError(f"race {self.race_id} has no video running")
        self.viewers.add(track)
        if len(self.viewers) == 1:
            self._send("active", True, quiet=True)

    def detach(self, track: ViewerTrack) -> None:
        if track in self.viewers:
            self.viewers.discard(track)
            if not self.viewers:
                self._send("active", False, quiet=True)

    def request_keyframe(self) -> None:
        """Ask the encoder for a keyframe; requests closer together than the gap are merged, never lost."""
        if self._keyframe_timer is not None:
            return
        wait = self._last_keyframe_request + KEYFRAME_REQUEST_GAP_S - time.monotonic()
        if wait > 0:
            self._keyframe_timer = asyncio.get_running_loop().call_later(wait, self._send_keyframe_request)
        else:
            self._send_keyframe_request()

    def _send_keyframe_request(self) -> None:
        self._keyframe_timer = None
        self._last_keyframe_request = time.monotonic()
        self._send("keyframe", None, quiet=True)

    # --- what the picture shows --------------------------------------------------------------
    def apply(self, event: Mapping[str, Any]) -> BroadcastState:
        """Fold a race event into the picture; the checkered flag rolls the replay after it."""
        state = self.feed.apply(event)
        self._send("state", state, quiet=True, droppable=True)
        if event.get("type") == "checkered":
            self._send("replay", float(event.get("replay_s", 0.0)), quiet=True)
        return state

    def show(self, state: BroadcastState) -> None:
        """Replace the picture's state outright (tests, scripted sources)."""
        self.feed.state = state
        self._send("state", state, quiet=True, droppable=True)

    def show_camera(self, grey: npt.NDArray[np.uint8]) -> None:
        """The car's newest image (a physical track's picture). Dropped, never queued, while the
        encoder is behind or a state waits for the pipe: the next image comes 1/15 s later."""
        conn = self._conn
        if conn is None or self.config.source != "car":
            return
        if self._unsent is not None or not select.select([], [conn.fileno()], [], 0)[1]:
            self.camera_dropped += 1
            return
        try:
            conn.send(("camera", grey))
        except OSError:
            return
        self.camera_frames += 1

    def set_view(self, view: str) -> None:
        if view not in VIEWS:
            raise ValueError(f"view: {view!r}; allowed values: {', '.join(VIEWS)}")
        self._send("view", view)

    # --- recording ---------------------------------------------------------------------------
    def start_recording(self, path: Path) -> None:
        self._send("record", str(path))

    async def stop_recording(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """Finish the file; returns {path, frames} (or {path, error})."""
        self._recorded = asyncio.get_running_loop().create_future()
        self._send("record", None)
        try:
            return await asyncio.wait_for(self._recorded, timeout_s)
        finally:
            self._recorded = None
