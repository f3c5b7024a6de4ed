"""The event bus: live race events fanned out to subscribers, in-process or over Redis.

The bus carries events that already have an id from their producer; it keeps no history.
A subscriber that misses events (overflow, Redis outage) is told so and resyncs from the
PostgreSQL event log. Events are msgpack-encoded on both implementations so an event that
works in development also works when scaled out over Redis.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import msgpack

logger = logging.getLogger("trackside.bus")

__all__ = [
    "BusError",
    "BusGap",
    "EventBus",
    "InProcessBus",
    "SubscriberDropped",
    "Subscription",
    "create_bus",
]


class BusError(Exception):
    """A publish could not be carried out (e.g. Redis unreachable, bus closed)."""


class SubscriberDropped(Exception):
    """Raised from a subscription's iterator once the bus dropped it (the reason is the message)."""


@dataclass(frozen=True)
class BusGap:
    """Delivery on this subscription was interrupted: events may be missing, resync from the log.

    ``resumed`` is False when the interruption starts and True once live delivery is back; a
    resync done after the resumed gap leaves no hole, since every later event is delivered.
    """

    reason: str
    resumed: bool = False


Item = bytes | BusGap


def encode_event(event: Mapping[str, Any]) -> bytes:
    """Validate and msgpack-encode an event (ValueError: no usable id; TypeError: not encodable)."""
    if not isinstance(event, Mapping):
        raise TypeError(f"event must be a mapping, not {type(event).__name__}")
    event_id = event.get("id")
    if isinstance(event_id, bool) or not isinstance(event_id, int | str):
        raise ValueError(f"event must carry an 'id' (int or str) from its producer, got {event_id!r}")
    try:
        data: bytes = msgpack.packb(dict(event), use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"event {event_id!r} is not msgpack-encodable: {exc}") from exc
    return data


def decode_event(data: bytes) -> dict[str, Any]:
    # strict_map_key=False: whatever packb accepted must decode (e.g. int keys in nested maps).
    event: dict[str, Any] = msgpack.unpackb(data, raw=False, strict_map_key=False)
    return event


class Subscription:
    """One subscriber's bounded queue; use as ``async with bus.subscribe(ch) as sub``."""

    def __init__(self, bus: EventBus, channel: str, max_queue: int) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.channel = channel
        self.max_queue = max_queue
        self._bus = bus
        self._items: collections.deque[Item] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._dropped: str | None = None
        self._ended = False
        # Set while this subscriber has been told of an outage and not yet of the recovery.
        self.awaiting_resume = False

    async def __aenter__(self) -> Subscription:
        await self._bus._register(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Synchronous on purpose: it also runs while the consumer task is being cancelled.
        self._bus._unregister(self)
        self._end()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any] | BusGap:
        while True:
            if self._dropped is not None:
                raise SubscriberDropped(self._dropped)
            if self._items:
                item = self._items.popleft()
                if isinstance(item, BusGap):
                    return item
                self._bus.delivered_total += 1
                return decode_event(item)
            if self._ended:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def offer(self, item: Item) -> bool:
        """Queue an item without blocking; False means the queue is full (caller drops us)."""
        if self._dropped is not None or self._ended:
            return True
        if len(self._items) >= self.max_queue:
            return False
        self._items.append(item)
        self._wake()
        return True

    def drop(self, reason: str) -> None:
        self._dropped = reason
        self._items.clear()
        self._wake()

    def _end(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class EventBus(abc.ABC):
    """Contract shared by both implementations; holds the local fan-out to subscribers."""

    kind = "abstract"

    def __init__(self) -> None:
        self.published_total = 0
        self.delivered_total = 0
        self.dropped_subscribers_total = 0
        # Keyed by the transport channel name; dicts keep registration order.
        self._subscribers: dict[str, dict[Subscription, None]] = {}
        self._started = False
        self._closed = False

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def publish(self, channel: str, event: Mapping[str, Any]) -> None: ...

    @abc.abstractmethod
    async def _register(self, sub: Subscription) -> None: ...

    async def close(self) -> None:
        self._closed = True
        for subs in list(self._subscribers.values()):
            for sub in list(subs):
                sub._end()
        self._subscribers.clear()

    def subscribe(self, channel: str, *, max_queue: int = 1024) -> Subscription:
        return Subscription(self, channel, max_queue)

    async def status(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "ok": self._started and not self._closed,
            "subscribers": sum(len(subs) for subs in self._subscribers.values()),
            "channels": len(self._subscribers),
            "published_total": self.published_total,
            "delivered_total": self.delivered_total,
            "dropped_subscribers_total": self.dropped_subscribers_total,
        }

    def _key(self, channel: str) -> str:
        return channel

    def _check_usable(self) -> None:
        if self._closed:
            raise BusError("event bus is closed")
        if not self._started:
            raise BusError("event bus is not started")

    def _add(self, sub: Subscription) -> None:
        self._check_usable()
        self._subscribers.setdefault(self._key(sub.channel), {})[sub] = None

    def _unregister(self, sub: Subscription) -> None:
        key = self._key(sub.channel)
        subs = self._subscribers.get(key)
        if subs is not None and sub in subs:
            del subs[sub]
            if not subs:
                del self._subscribers[key]
            self._on_channel_change()

    @abc.abstractmethod
    def _on_channel_change(self) -> None:
        """A channel lost its last subscriber (transports mirroring channels react here)."""

    def _dispatch(self, key: str, item: Item) -> None:
        for sub in list(self._subscribers.get(key, ())):
            self._offer(sub, item)

    def _offer(self, sub: Subscription, item: Item) -> None:
        if not sub.offer(item):
            reason = (
                f"subscriber on channel {sub.channel!r} fell behind: its queue of {sub.max_queue} events overflowed"
            )
            logger.warning("dropping slow subscriber: %s", reason)
            self.dropped_subscribers_total += 1
            self._unregister(sub)
            sub.drop(reason)


class InProcessBus(EventBus):
    """Single-process bus: publish hands encoded events straight to local subscriber queues."""

    kind = "memory"

    async def start(self) -> None:
        self._started = True

    async def publish(self, channel: str, event: Mapping[str, Any]) -> None:
        data = encode_event(event)
        self._check_usable()
        self._dispatch(channel, data)
        self.published_total += 1

    async def _register(self, sub: Subscription) -> None:
        self._add(sub)

    def _on_channel_change(self) -> None:
        return  # nothing outside this process tracks our channels


def create_bus(redis_url: str | None, *, prefix: str = "trackside:") -> EventBus:
    """The Redis bus when a URL is configured (scale-out), else the in-process bus."""
    if redis_url:
        # Imported here so the in-process bus never loads the redis client, and so redis_bus
        # (which builds on this module) can be imported first without a cycle.
        from race_server.redis_bus import RedisBus

        return RedisBus(redis_url, prefix=prefix)
    return InProcessBus()
