"""Contract tests for the event bus, run against the in-process and the Redis implementation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis.asyncio import Redis

from race_server.bus import (
    BusError,
    BusGap,
    EventBus,
    InProcessBus,
    SubscriberDropped,
    Subscription,
    create_bus,
)
from race_server.redis_bus import RedisBus
from tests.tcp_proxy import TcpProxy

WAIT = 10.0  # upper bound for anything that should happen promptly


def _prefix() -> str:
    return f"test-bus:{uuid.uuid4().hex}:"


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def _started(impl: EventBus) -> AsyncIterator[EventBus]:
    await impl.start()
    yield impl
    await impl.close()


@pytest.fixture
async def memory_bus() -> AsyncIterator[EventBus]:
    async for impl in _started(InProcessBus()):
        yield impl


@pytest.fixture
async def redis_bus(redis_url: str) -> AsyncIterator[EventBus]:
    # redis_url (conftest) skips, or fails under CI, when Redis is unreachable.
    async for impl in _started(RedisBus(redis_url, prefix=_prefix())):
        yield impl


@pytest.fixture(params=["memory", "redis"])
def bus(request: pytest.FixtureRequest) -> EventBus:
    impl: EventBus = request.getfixturevalue(f"{request.param}_bus")
    return impl


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[TcpProxy]:
    target = urlsplit(redis_url)
    tcp = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    await tcp.start()
    yield tcp
    await tcp.close()


def _via(proxy: TcpProxy, redis_url: str) -> str:
    parts = urlsplit(redis_url)
    netloc = f"{parts.netloc.rpartition('@')[0]}@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{proxy.port}"))


async def next_item(sub: Subscription) -> dict[str, Any] | BusGap:
    async with asyncio.timeout(WAIT):
        return await anext(sub)


async def next_event(sub: Subscription) -> dict[str, Any]:
    item = await next_item(sub)
    assert isinstance(item, dict), item
    return item


async def take(sub: Subscription, n: int) -> list[dict[str, Any]]:
    return [await next_event(sub) for _ in range(n)]


async def wait_until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll a condition for which no event exists, bounded by WAIT."""
    deadline = time.monotonic() + WAIT
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        await asyncio.sleep(0.01)


def event(i: int) -> dict[str, Any]:
    return {"id": i, "type": "lap", "t": i / 15, "racer": "ana", "sectors": [1.5, None], "m": {1: "x"}}


async def test_create_bus_picks_the_implementation() -> None:
    assert isinstance(create_bus(None), InProcessBus)
    redis_bus = create_bus("redis://user:secret@127.0.0.1:1/0", prefix="p:")
    assert isinstance(redis_bus, RedisBus)
    assert redis_bus.prefix == "p:"
    assert "secret" not in redis_bus.safe_url
    await redis_bus.close()


async def test_events_arrive_in_order_as_published(bus: EventBus) -> None:
    n = 1000
    async with bus.subscribe("race-1", max_queue=n) as sub:
        consumer = asyncio.create_task(take(sub, n))
        for i in range(n):
            await bus.publish("race-1", event(i))
        received = await consumer
    assert received == [event(i) for i in range(n)]
    assert bus.published_total == n
    assert bus.delivered_total == n


async def test_every_subscriber_gets_every_event(bus: EventBus) -> None:
    async with contextlib.AsyncExitStack() as stack:
        subs = [await stack.enter_async_context(bus.subscribe("race-1")) for _ in range(50)]
        for i in range(20):
            await bus.publish("race-1", event(i))
        received = await asyncio.gather(*(take(sub, 20) for sub in subs))
    assert all(got == [event(i) for i in range(20)] for got in received)
    assert bus.delivered_total == 50 * 20
    assert (await bus.status())["subscribers"] == 0


async def test_channels_are_isolated(bus: EventBus) -> None:
    async with bus.subscribe("a") as sub_a, bus.subscribe("b") as sub_b:
        await bus.publish("a", {"id": 1})
        await bus.publish("b", {"id": 2})
        await bus.publish("a", {"id": 3})
        await bus.publish("b", {"id": "end"})
        assert await take(sub_a, 2) == [{"id": 1}, {"id": 3}]
        assert await take(sub_b, 2) == [{"id": 2}, {"id": "end"}]


async def test_slow_subscriber_is_dropped_without_blocking_the_publisher(
    bus: EventBus, caplog: pytest.LogCaptureFixture
) -> None:
    n = 200
    caplog.set_level(logging.WARNING, logger="trackside.bus")
    async with bus.subscribe("race-1", max_queue=10) as slow, bus.subscribe("race-1") as fast:
        fast_consumer = asyncio.create_task(take(fast, n))
        async with asyncio.timeout(WAIT):  # the publisher never waits for the slow one
            for i in range(n):
                await bus.publish("race-1", {"id": i})
        assert [e["id"] for e in await fast_consumer] == list(range(n))
        # The fast subscriber saw event n-1, so the slow one's overflow has been handled too.
        with pytest.raises(SubscriberDropped, match="queue of 10 events overflowed"):
            await next_item(slow)
        with pytest.raises(SubscriberDropped):
            await next_item(slow)  # stays dropped
        status = await bus.status()
        assert status["subscribers"] == 1
        assert status["dropped_subscribers_total"] == bus.dropped_subscribers_total == 1
    dropped = [r for r in caplog.records if r.name == "trackside.bus" and "overflowed" in r.message]
    assert len(dropped) == 1 and dropped[0].levelno == logging.WARNING


async def test_cancelling_a_consumer_unregisters_it(bus: EventBus) -> None:
    first = asyncio.Event()
    received: list[dict[str, Any] | BusGap] = []

    async def consume() -> None:
        async with bus.subscribe("race-1") as sub:
            async for item in sub:
                received.append(item)
                first.set()

    before = asyncio.all_tasks()
    for round_ in range(3):  # repeated, so a leak per subscription would show
        first.clear()
        consumer = asyncio.create_task(consume())
        await wait_until(lambda: _subscribers_is(bus, 1), "the consumer has subscribed")
        await bus.publish("race-1", {"id": round_})
        async with asyncio.timeout(WAIT):
            await first.wait()
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert (await bus.status())["subscribers"] == 0
    assert received == [{"id": 0}, {"id": 1}, {"id": 2}]
    await wait_until(lambda: _no_new_tasks(before), "helper tasks of the cancelled consumers have finished")


async def _subscribers_is(bus: EventBus, n: int) -> bool:
    subscribers: int = (await bus.status())["subscribers"]
    return subscribers == n


async def _no_new_tasks(before: set[asyncio.Task[Any]]) -> bool:
    return not {t for t in asyncio.all_tasks() - before if not t.done()}


async def test_cancelling_while_waiting_for_events_leaves_the_queue_usable(bus: EventBus) -> None:
    async with bus.subscribe("race-1") as sub:
        with pytest.raises(TimeoutError):  # the timeout cancels the iterator while it waits
            async with asyncio.timeout(0.05):
                await anext(sub)
        await bus.publish("race-1", {"id": 7})
        assert await next_event(sub) == {"id": 7}


@pytest.mark.parametrize("bad", [{"type": "lap"}, {"id": None}, {"id": True}, {"id": 1.5}])
async def test_event_without_an_id_is_refused(bus: EventBus, bad: dict[str, Any]) -> None:
    async with bus.subscribe("race-1") as sub:
        with pytest.raises(ValueError, match="id"):
            await bus.publish("race-1", bad)
        await bus.publish("race-1", {"id": "after"})
        assert await next_event(sub) == {"id": "after"}
    assert bus.published_total == 1


@pytest.mark.parametrize("bad", [{"id": 1, "x": object()}, {"id": 1, "big": 2**70}, {"id": 1, "s": {1}}])
async def test_event_that_msgpack_cannot_encode_is_refused(bus: EventBus, bad: dict[str, Any]) -> None:
    async with bus.subscribe("race-1") as sub:
        with pytest.raises(TypeError, match="not msgpack-encodable"):
            await bus.publish("race-1", bad)
        await bus.publish("race-1", {"id": "after"})
        assert await next_event(sub) == {"id": "after"}
    assert bus.published_total == 1


async def test_status_reports_kind_and_subscribers(bus: EventBus) -> None:
    status = await bus.status()
    assert status["kind"] == ("redis" if isinstance(bus, RedisBus) else "memory")
    assert status["ok"] is True
    assert status["subscribers"] == 0
    async with bus.subscribe("a"), bus.subscribe("a"), bus.subscribe("b"):
        status = await bus.status()
        assert (status["subscribers"], status["channels"]) == (3, 2)


async def test_closed_bus_refuses_and_ends_subscriptions(bus: EventBus) -> None:
    async with bus.subscribe("race-1") as sub:
        await bus.close()
        with pytest.raises(StopAsyncIteration):
            await next_item(sub)
    with pytest.raises(BusError, match="closed"):
        await bus.publish("race-1", {"id": 1})
    with pytest.raises(BusError, match="closed"):
        async with bus.subscribe("race-1"):
            pass
    assert (await bus.status())["ok"] is False


# Redis-only behaviour ------------------------------------------------------------------------


async def test_redis_uses_one_server_subscription_per_channel(redis_url: str, redis_client: Redis) -> None:
    bus = RedisBus(redis_url, prefix=_prefix())
    await bus.start()
    channel = bus.prefix + "race-1"

    async def numsub() -> int:
        counts = await redis_client.pubsub_numsub(channel)
        return int(counts[0][1])

    try:
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(20):
                await stack.enter_async_context(bus.subscribe("race-1"))
            assert await numsub() == 1

        async def unsubscribed() -> bool:
            return await numsub() == 0

        await wait_until(unsubscribed, "the bus has unsubscribed the idle channel")
    finally:
        await bus.close()


async def test_redis_cut_fails_publish_tells_subscribers_and_recovers(
    proxy: TcpProxy, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trackside.bus")
    bus = RedisBus(_via(proxy, redis_url), prefix=_prefix(), timeout=1.0, max_backoff=0.2)
    await bus.start()
    try:
        async with bus.subscribe("a") as sub_a, bus.subscribe("a") as sub_a2, bus.subscribe("b") as sub_b:
            await bus.publish("a", {"id": 1})
            assert await next_event(sub_a) == await next_event(sub_a2) == {"id": 1}

            await proxy.cut()
            started = time.monotonic()
            with pytest.raises(BusError, match=r"event bus unavailable: Redis at .* is unreachable"):
                await bus.publish("a", {"id": 2})
            assert time.monotonic() - started < 1.0
            for sub in (sub_a, sub_a2, sub_b):
                gap = await next_item(sub)
                assert isinstance(gap, BusGap) and not gap.resumed and "unreachable" in gap.reason
            status = await bus.status()
            assert status["ok"] is False and status["error"]

            await proxy.restore()
            for sub in (sub_a, sub_a2, sub_b):
                gap = await next_item(sub)
                assert isinstance(gap, BusGap) and gap.resumed
            await bus.publish("a", {"id": 3})
            await bus.publish("b", {"id": 4})
            assert await next_event(sub_a) == await next_event(sub_a2) == {"id": 3}
            assert await next_event(sub_b) == {"id": 4}
            assert (await bus.status())["ok"] is True
    finally:
        await bus.close()
    messages = [r.message for r in caplog.records if r.name == "trackside.bus"]
    assert any("unreachable" in m for m in messages)
    assert any("reachable again" in m for m in messages)


async def test_redis_silent_partition_is_detected(proxy: TcpProxy, redis_url: str) -> None:
    bus = RedisBus(_via(proxy, redis_url), prefix=_prefix(), timeout=0.5, keepalive=0.3, max_backoff=0.2)
    await bus.start()
    try:
        async with bus.subscribe("a") as sub:
            # Idle time is the input here: a quiet but healthy link must survive the keepalive.
            await asyncio.sleep(1.0)
            await bus.publish("a", {"id": 0})
            assert await next_item(sub) == {"id": 0}

            proxy.frozen = True
            started = time.monotonic()
            with pytest.raises(BusError, match="unreachable"):
                await bus.publish("a", {"id": 1})
            assert time.monotonic() - started < 2.0
            gap = await next_item(sub)
            assert isinstance(gap, BusGap) and not gap.resumed

            proxy.frozen = False
            gap = await next_item(sub)
            assert isinstance(gap, BusGap) and gap.resumed
            await bus.publish("a", {"id": 2})
            assert await next_event(sub) == {"id": 2}
    finally:
        await bus.close()


async def test_redis_down_at_start_then_up(proxy: TcpProxy, redis_url: str) -> None:
    await proxy.cut()
    bus = RedisBus(_via(proxy, redis_url), prefix=_prefix(), timeout=1.0, max_backoff=0.2)
    async with asyncio.timeout(WAIT):
        await bus.start()  # returns instead of waiting for Redis
    try:
        status = await bus.status()
        assert status["ok"] is False and status["error"]
        with pytest.raises(BusError, match="unreachable"):
            await bus.publish("a", {"id": 1})
        async with bus.subscribe("a") as sub:
            gap = await next_item(sub)
            assert isinstance(gap, BusGap) and not gap.resumed
            await proxy.restore()
            gap = await next_item(sub)
            assert isinstance(gap, BusGap) and gap.resumed
            await bus.publish("a", {"id": 2})
            assert await next_event(sub) == {"id": 2}
    finally:
        await bus.close()
