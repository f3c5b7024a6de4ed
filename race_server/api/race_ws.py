"""The race websocket ``/ws/races/{id}``: snapshot, replay from the event log, live events, commands.

Per process, one bus subscription per race (a ``Feed``) decodes each event once, encodes it once
per wire format and offers the frame to every connection's bounded queue; one writer task per
connection drains it. A connection whose queue is full is dropped (it reconnects and resumes from
its last event id) without slowing anyone else. Telemetry goes out at 15 Hz to the racer on track
and at ``SPECTATOR_TELEMETRY_HZ`` to everyone else.

Resume without gap or duplicate: on ``subscribe`` the connection joins the feed first (live events
are held back), then reads the log after its last event id (or a snapshot, which carries the id it
is current to), sends that, and then releases the held live events, dropping any id already sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from datetime import UTC, datetime
from typing import Any

import asyncpg
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from race_server import auth, protocol
from race_server.api.race_access import RaceAccess, RaceRole, race_access
from race_server.api.socket_watch import REVOKED_REASON, socket_watch
from race_server.auth import AuthError
from race_server.bus import BusGap, EventBus, SubscriberDropped
from race_server.db import race_events, races
from race_server.queue import service
from race_server.queue.machine import QueueError

log = logging.getLogger("trackside.race_ws")

SEND_QUEUE = 512
SPECTATOR_TELEMETRY_HZ = 3.0
SPECTATOR_TELEMETRY_EVERY = round(15 / SPECTATOR_TELEMETRY_HZ)  # of the on-track car's 15 Hz frames
WS_TOO_SLOW = 4008
WS_NOT_FOUND = 4404
_ids = itertools.count(1)


class Frames:
    """One event's wire frames, encoded at most once per format however many clients get it."""

    __slots__ = ("_frames", "event")

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        self._frames: dict[str, str | bytes] = {}

    def get(self, fmt: protocol.Format) -> str | bytes:
        frame = self._frames.get(fmt)
        if frame is None:
            payload = {k: v for k, v in self.event.items() if k != "id"}
            if not isinstance(self.event.get("id"), int):
                payload.pop("event_id", None)
            frame = protocol.encode_server_message(payload, fmt)
            self._frames[fmt] = frame
        return frame


class Connection:
    def __init__(self, websocket: WebSocket, access: RaceAccess, fmt: protocol.Format) -> None:
        self.id = next(_ids)
        self.websocket = websocket
        self.access = access
        self.fmt: protocol.Format = fmt
        self.queue: asyncio.Queue[str | bytes | tuple[int, str]] = asyncio.Queue(SEND_QUEUE)
        self.cursor = 0  # last stored event id sent
        self.live = False
        self.held: list[Frames] = []
        self.subscribed = False
        self.closing = False
        self._telemetry_seen = 0

    @property
    def user_id(self) -> int | None:
        return self.access.user_id

    def send(self, frame: str | bytes) -> None:
        if self.closing:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.kick(WS_TOO_SLOW, "too slow: events were not read in time; reconnect and resume")

    def reply(self, message: dict[str, Any]) -> None:
        self.send(protocol.encode_server_message({**message, "race_id": self.access.race.id}, self.fmt))

    def kick(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        # The close must get through even when the queue is full: make room for it.
        while self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait((code, reason))

    def offer(self, frames: Frames) -> None:
        """A live event from the feed (called synchronously by the feed task)."""
        if not self.subscribed:
            return
        if not self.live:
            self.held.append(frames)
            return
        self._deliver(frames)

    def _deliver(self, frames: Frames) -> None:
        event = frames.event
        event_id = event.get("id")
        if isinstance(event_id, int):
            if event_id <= self.cursor:
                return
            self.cursor = event_id
        elif event.get("type") == "telemetry" and event.get("racer_id") != self.user_id:
            # Every n-th frame, phased by connection id: spectators' frames spread over the ticks
            # instead of all 500 going out on the same one (a burst that delays laps and commands).
            self._telemetry_seen += 1
            if (self._telemetry_seen + self.id) % SPECTATOR_TELEMETRY_EVERY:
                return
        self.send(frames.get(self.fmt))

    def go_live(self) -> None:
        held, self.held = self.held, []
        self.live = True
        for frames in held:
            self._deliver(frames)

    async def write_loop(self) -> None:
        while True:
            item = await self.queue.get()
            if isinstance(item, tuple):
                with contextlib.suppress(Exception):
                    await self.websocket.close(code=item[0], reason=item[1][:120])
                return
            if isinstance(item, str):
                await self.websocket.send_text(item)
            else:
                await self.websocket.send_bytes(item)
            if not self.queue.empty():
                # A send does not suspend: without this one connection would write its whole backlog
                # (a lap, then the leaderboard...) before the next connection got the lap at all.
                await asyncio.sleep(0)


class Feed:
    """This process's one bus subscription for a race, fanned out to its connections."""

    def __init__(self, race_id: int, bus: EventBus, pool: asyncpg.Pool) -> None:
        self.race_id = race_id
        self.bus = bus
        self.pool = pool
        self.connections: dict[int, Connection] = {}
        self.last_id = 0
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def open(self) -> None:
        self.last_id = await race_events.last_id(self.pool, self.race_id)
        self._task = asyncio.create_task(self._run(), name=f"race-feed-{self.race_id}")
        await self._ready.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with self.bus.subscribe(service.channel(self.race_id), max_queue=8192) as sub:
                    if not self._ready.is_set():
                        self._ready.set()
                    else:
                        await self._resync()
                    async for item in sub:
                        if isinstance(item, BusGap):
                            if item.resumed:
                                await self._resync()
                            continue
                        self.dispatch(item)
            except SubscriberDropped:
                log.warning("race %s: feed fell behind the bus; resubscribing", self.race_id)
            except Exception:
                if not self._ready.is_set():
                    self._ready.set()
                log.exception("race %s: feed failed; resubscribing", self.race_id)
                await asyncio.sleep(0.5)

    async def _resync(self) -> None:
        for event in await race_events.since(self.pool, self.race_id, self.last_id):
            self.dispatch(event)

    def dispatch(self, event: dict[str, Any]) -> None:
        if event.get("type") == "_revoke":
            self._revoke(event)
            return
        event_id = event.get("id")
        if isinstance(event_id, int):
            if event_id <= self.last_id:
                return
            self.last_id = event_id
        frames = Frames(event)
        for conn in list(self.connections.values()):
            try:
                conn.offer(frames)
            except protocol.ProtocolError:
                log.exception("race %s: event %s does not fit the protocol", self.race_id, event.get("type"))
                return

    def _revoke(self, event: dict[str, Any]) -> None:
        for conn in list(self.connections.values()):
            access = conn.access
            if (
                event.get("everyone")
                or (event.get("user_id") is not None and event.get("user_id") == conn.user_id)
                or (event.get("race_viewers") and access.race_viewer_token)
            ):
                conn.kick(auth.WS_FORBIDDEN, "your access to this race was withdrawn")


class Feeds:
    def __init__(self, bus: EventBus, pool: asyncpg.Pool) -> None:
        self.bus = bus
        self.pool = pool
        self.feeds: dict[int, Feed] = {}
        self._lock = asyncio.Lock()

    async def join(self, race_id: int, conn: Connection) -> None:
        async with self._lock:
            feed = self.feeds.get(race_id)
            if feed is None:
                feed = Feed(race_id, self.bus, self.pool)
                await feed.open()
                self.feeds[race_id] = feed
            feed.connections[conn.id] = conn

    async def leave(self, race_id: int, conn: Connection) -> None:
        async with self._lock:
            feed = self.feeds.get(race_id)
            if feed is None:
                return
            feed.connections.pop(conn.id, None)
            if not feed.connections:
                del self.feeds[race_id]
                await feed.close()

    async def close(self) -> None:
        for feed in list(self.feeds.values()):
            await feed.close()
        self.feeds.clear()


async def snapshot(pool: asyncpg.Pool, race_id: int) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        race = await races.get(conn, race_id)
        if race is None:
            raise LookupError(race_id)
        rows = await service.leaderboard(conn, race_id, race.config)
    state = (race.queue_state or {}).get("snapshot")
    return {
        "type": "snapshot",
        "race_id": race_id,
        "last_event_id": race.last_event_id,
        "race": race.as_json(datetime.now(UTC)),
        "queue": state,
        "leaderboard": [row.to_dict() for row in rows],
        "run": None if state is None else state.get("run"),
    }


async def _still_allowed(pool: asyncpg.Pool, conn: Connection, token: str | None) -> bool:
    access = conn.access
    if access.race_viewer_token:
        return token is not None and await races.viewer_matches(pool, access.race.id, auth.digest(token))
    if access.role is RaceRole.RACER and access.user_id is not None:
        return await races.is_member(pool, access.race.id, access.user_id)
    return await races.get(pool, access.race.id) is not None


async def _subscribe(conn: Connection, feeds: Feeds, pool: asyncpg.Pool, last_event_id: int | None) -> None:
    race_id = conn.access.race.id
    if not conn.subscribed:
        conn.subscribed = True
        conn.live = False
        await feeds.join(race_id, conn)
    else:
        conn.live = False
    if last_event_id is None:
        snap = await snapshot(pool, race_id)
        conn.cursor = int(snap["last_event_id"])
        conn.send(protocol.encode_server_message(snap, conn.fmt))
    else:
        conn.cursor = last_event_id
        while True:
            replay = await race_events.since(pool, race_id, conn.cursor, limit=2000)
            for event in replay:
                conn._deliver(Frames(event))
            if len(replay) < 2000:
                break
    conn.go_live()


async def _handle(conn: Connection, raw: str | bytes, feeds: Feeds, app_state: Any, token: str | None) -> None:
    race_id = conn.access.race.id
    pool = app_state.pool
    try:
        message = protocol.parse_client_message(raw)
    except protocol.ProtocolError as bad:
        conn.send(protocol.encode_server_message({**bad.reply(), "race_id": race_id}, conn.fmt))
        return
    req = message.req
    if isinstance(raw, bytes) and raw.lstrip()[:1] != b"{":
        conn.fmt = "msgpack"
    elif isinstance(raw, str):
        conn.fmt = "json"

    def error(code: str, text: str) -> None:
        conn.reply({"type": "error", "req": req, "code": code, "message": text})

    if isinstance(message, protocol.Ping):
        conn.reply({"type": "ok", "req": req})
        return
    wanted = getattr(message, "race_id", race_id)
    if wanted != race_id:
        error("wrong_race", f"this socket serves race {race_id}; open /ws/races/{wanted}")
        return
    # A subscribed racer's speed command skips the database: their membership is taken as cached for
    # the socket's life, since a removal closes their subscribed sockets at once (Feed._revoke), and
    # QueueService.set_speed checks "on track, during their run" in memory.
    speed = isinstance(message, protocol.SpeedControl) and conn.subscribed and conn.access.role is RaceRole.RACER
    principal = conn.access.principal
    # The socket's token or session may have been revoked elsewhere since the last sweep.
    if not speed and principal is not None and not await socket_watch(app_state).still_valid(principal):
        conn.kick(auth.WS_UNAUTHENTICATED, REVOKED_REASON)
        return
    if not speed and not await _still_allowed(pool, conn, token):
        conn.kick(auth.WS_FORBIDDEN, "your access to this race was withdrawn")
        return
    if conn.closing:  # revoked while the checks above awaited
        return
    role = conn.access.role
    try:
        if isinstance(message, protocol.Subscribe):
            conn.reply({"type": "ok", "req": req})
            await _subscribe(conn, feeds, pool, message.last_event_id)
            return
        if isinstance(message, protocol.Unsubscribe):
            conn.subscribed = False
            await feeds.leave(race_id, conn)
            conn.reply({"type": "ok", "req": req})
            return
        queue: service.QueueService | None = app_state.race_queue
        if queue is None or conn.access.race.format != "live":
            error("not_live", "commands are for LIVE races")
            return
        if isinstance(message, protocol.SpeedControl):
            if role is not RaceRole.RACER or conn.user_id is None:
                error("forbidden", "only the racer on track controls the speed")
                return
            applied = await queue.set_speed(race_id, conn.user_id, message.multiplier)
            conn.reply({"type": "ok", "req": req})
            log.debug("race %s: racer %s speed %.2f", race_id, conn.user_id, applied)
            return
        if role is not RaceRole.ORGANIZER:
            error("forbidden", f"{message.type} is for the race's organizer")
            return
        await queue.command(race_id, message, editor=f"{conn.user_id}/{conn.id}")
        conn.reply({"type": "ok", "req": req})
    except QueueError as failure:
        error(failure.code, failure.message)
    except ValueError as failure:
        error("invalid", str(failure))


async def race_socket(websocket: WebSocket) -> None:
    race_id = websocket.path_params["race_id"]
    try:
        access = await race_access(websocket, race_id)
    except AuthError as failure:
        await websocket.accept()
        code = {401: auth.WS_UNAUTHENTICATED, 404: WS_NOT_FOUND}.get(failure.status, auth.WS_FORBIDDEN)
        await websocket.close(code=code, reason=failure.message[:120])
        return
    await websocket.accept()
    state = websocket.app.state
    feeds: Feeds = state.race_feeds
    fmt: protocol.Format = "msgpack" if websocket.query_params.get("format") == "msgpack" else "json"
    conn = Connection(websocket, access, fmt)
    token = auth.bearer_token(websocket) or websocket.query_params.get("viewer")
    writer = asyncio.create_task(conn.write_loop(), name=f"race-ws-writer-{conn.id}")
    watched = contextlib.ExitStack()
    if access.principal is not None:
        watched.enter_context(socket_watch(state).watching(access.principal, conn.kick))
    try:
        while not conn.closing:
            receive = asyncio.create_task(websocket.receive())
            done, _ = await asyncio.wait({receive, writer}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:
                receive.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await receive
                break
            message = receive.result()
            if message["type"] == "websocket.disconnect":
                break
            raw = message.get("text")
            if raw is None:
                raw = message.get("bytes") or b""
            if conn.closing:  # revoked (socket_watch) while this frame was in flight: it never runs
                break
            await _handle(conn, raw, feeds, state, token)
    except WebSocketDisconnect:
        pass
    finally:
        watched.close()
        await feeds.leave(race_id, conn)
        if conn.closing and not writer.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, 2.0)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer


routes: list[BaseRoute] = [WebSocketRoute("/ws/races/{race_id:int}", race_socket)]
