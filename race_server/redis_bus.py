"""The Redis pub/sub implementation of the event bus (scale-out across server processes).

One pub/sub connection per bus, owned by a supervisor task: a reader dispatches messages to the
local subscribers' bounded queues and a reconciler keeps the server-side channel set equal to
the channels that have local subscribers. When the connection is lost every subscriber gets a
BusGap; the supervisor reconnects with backoff, re-subscribes, and each subscriber gets a second
BusGap (resumed=True) once its channel is live again. Publishes use a separate pooled client
with short timeouts so an outage fails them fast instead of hanging.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from race_server.bus import BusError, BusGap, EventBus, Subscription, encode_event

logger = logging.getLogger("trackside.bus")


def redact_url(url: str) -> str:
    """The URL without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


async def _cancel_and_wait(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel tasks and wait until they are really done.

    The cancel is repeated because on Python 3.11 ``asyncio.wait_for`` (which redis-py uses to
    send commands) can swallow a cancellation that arrives just as the send completes.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.05)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # marks it retrieved; the caller reads the one that matters


class RedisBus(EventBus):
    kind = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "trackside:",
        timeout: float = 2.0,
        keepalive: float = 5.0,
        max_backoff: float = 2.0,
    ) -> None:
        super().__init__()
        self.prefix = prefix
        self.safe_url = redact_url(url)
        self._keepalive = keepalive
        self._max_backoff = max_backoff
        # One immediate retry replaces a pooled connection that died while idle. RESP2 because
        # the pub/sub reader parses plain message arrays (RESP3 turns them into push frames).
        self._client: Redis = Redis.from_url(
            url,
            protocol=2,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
        self._connected = False
        self._was_lost = False
        self._last_error = "not connected yet"
        self._requested: set[str] = set()  # channels asked of the server on this connection
        self._inflight: dict[str, int] = {}  # (un)subscribe replies still due, per channel
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._wake = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._first_attempt = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    def _key(self, channel: str) -> str:
        return self.prefix + channel

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._runner = asyncio.create_task(self._run(), name="trackside.bus.redis")
        # Subscribers entering right after start should find the connection up if Redis is.
        await self._first_attempt.wait()

    async def close(self) -> None:
        if self._runner is not None:
            await _cancel_and_wait([self._runner])
            self._runner = None
        self._connected = False
        self._release_waiters()
        await super().close()
        await self._client.aclose()

    async def publish(self, channel: str, event: Mapping[str, Any]) -> None:
        data = encode_event(event)
        self._check_usable()
        try:
            await self._client.publish(self._key(channel), data)
        except (RedisError, OSError) as exc:
            raise BusError(self._unreachable(exc)) from exc
        self.published_total += 1

    async def status(self) -> dict[str, Any]:
        status = await super().status()
        status["ok"] = status["ok"] and self._connected
        status["url"] = self.safe_url
        status["error"] = None if self._connected else self._last_error
        return status

    def _unreachable(self, exc: BaseException) -> str:
        detail = str(exc) or type(exc).__name__
        return f"event bus unavailable: Redis at {self.safe_url} is unreachable: {detail}"

    async def _register(self, sub: Subscription) -> None:
        self._add(sub)
        key = self._key(sub.channel)
        if not self._connected:
            self._tell_lost(sub, self._unreachable(RedisConnectionError(self._last_error)))
            return
        if key in self._requested and key not in self._inflight:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append(waiter)
        self._wake.set()
        try:
            await waiter
        except BaseException:
            self._unregister(sub)
            raise

    def _on_channel_change(self) -> None:
        self._wake.set()

    def _tell_lost(self, sub: Subscription, reason: str) -> None:
        if not sub.awaiting_resume:
            sub.awaiting_resume = True
            self._offer(sub, BusGap(reason))

    def _release_waiters(self) -> None:
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        self._waiters.clear()

    async def _run(self) -> None:
        failures = 0
        while True:
            # redis-py leaves these two untyped.
            conn: AbstractConnection = self._client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
            try:
                await conn.connect()  # type: ignore[no-untyped-call]
                self._on_connected()
                failures = 0
                await self._serve(conn)
            except Exception as exc:
                if not isinstance(exc, RedisError | OSError):
                    logger.exception("event bus: unexpected error on the Redis connection")
                self._on_lost(exc, first_failure=failures == 0)
            finally:
                await conn.disconnect(nowait=True)
            failures += 1
            self._first_attempt.set()
            await asyncio.sleep(min(self._max_backoff, 0.05 * 2**failures))

    def _on_connected(self) -> None:
        if self._was_lost:
            logger.info(
                "event bus: Redis at %s is reachable again; re-subscribing %d channels",
                self.safe_url,
                len(self._subscribers),
            )
        self._connected = True
        self._was_lost = False
        self._requested.clear()
        self._inflight.clear()
        self._wake.set()
        self._first_attempt.set()

    def _on_lost(self, exc: BaseException, *, first_failure: bool) -> None:
        was_connected = self._connected
        self._connected = False
        self._was_lost = True
        self._requested.clear()
        self._inflight.clear()
        self._last_error = str(exc) or type(exc).__name__
        self._release_waiters()
        if was_connected or first_failure:
            logger.warning(
                "event bus: Redis at %s unreachable (%s); retrying, subscribers must resync",
                self.safe_url,
                self._last_error,
            )
        reason = self._unreachable(exc)
        for subs in list(self._subscribers.values()):
            for sub in list(subs):
                self._tell_lost(sub, reason)

    async def _serve(self, conn: AbstractConnection) -> None:
        tasks = [
            asyncio.create_task(self._read_loop(conn), name="trackside.bus.redis-reader"),
            asyncio.create_task(self._reconcile_loop(conn), name="trackside.bus.redis-subscriber"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await _cancel_and_wait(tasks)
        for task in done:
            task.result()
        raise RedisConnectionError("pub/sub loop ended")

    async def _read_loop(self, conn: AbstractConnection) -> None:
        ping_sent = False
        while True:
            # A bounded read plus PING notices a silently dead peer (no FIN/RST ever arrives).
            response = await conn.read_response(timeout=self._keepalive)
            if response is None:
                if ping_sent:
                    raise RedisConnectionError(f"no reply to PING within {2 * self._keepalive}s")
                await self._send(conn, "PING")
                ping_sent = True
                continue
            ping_sent = False
            if isinstance(response, list) and len(response) >= 3:
                self._handle(response[0], response[1].decode(), response[2])

    def _handle(self, kind: bytes, key: str, payload: Any) -> None:
        if kind == b"message":
            self._dispatch(key, payload)
        elif kind in (b"subscribe", b"unsubscribe"):
            due = self._inflight.get(key, 0) - 1
            if due > 0:
                self._inflight[key] = due
                return
            self._inflight.pop(key, None)
            if key not in self._requested:
                return
            for waiter in self._waiters.pop(key, []):
                if not waiter.done():
                    waiter.set_result(None)
            for sub in list(self._subscribers.get(key, ())):
                if sub.awaiting_resume:
                    sub.awaiting_resume = False
                    self._offer(sub, BusGap(f"event bus: Redis at {self.safe_url} is back", True))

    async def _reconcile_loop(self, conn: AbstractConnection) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            desired = set(self._subscribers)
            gone = sorted(self._requested - desired)
            new = sorted(desired - self._requested)
            self._requested.difference_update(gone)
            self._requested.update(new)
            for key in (*gone, *new):
                self._inflight[key] = self._inflight.get(key, 0) + 1
            if gone:
                await self._send(conn, "UNSUBSCRIBE", *gone)
            if new:
                await self._send(conn, "SUBSCRIBE", *new)

    async def _send(self, conn: AbstractConnection, *args: str) -> None:
        async with self._send_lock:
            if not conn.is_connected:
                # send_command would silently reconnect, bypassing the re-subscribe logic.
                raise RedisConnectionError("pub/sub connection closed")
            await conn.send_command(*args, check_health=False)
