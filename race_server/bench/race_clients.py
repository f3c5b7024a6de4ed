"""The race benchmark's websocket clients: the orchestrator's own connections (organizer, racer) and
spectators spread over spawned processes, so the server's CPU is measured apart from theirs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

Message = dict[str, Any]
CONNECT_BATCH = 50


class Socket:
    """One connection of the orchestrating process: replies by ``req``, ``expect`` for a message to come,
    ``on_message`` sees everything with its arrival time."""

    def __init__(self, ws: ClientConnection, race_id: int, on_message: Callable[[Message, float], None]) -> None:
        self.ws = ws
        self.race_id = race_id
        self.on_message = on_message
        self._req = 0
        self._replies: dict[int, asyncio.Future[Message]] = {}
        self._waiters: list[tuple[Callable[[Message], bool], asyncio.Future[Message]]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                now = time.time()
                message: Message = json.loads(raw)
                self.on_message(message, now)
                reply = self._replies.pop(message.get("req") or 0, None)
                if reply is not None and message["type"] in ("ok", "error") and not reply.done():
                    reply.set_result(message)
                for predicate, future in list(self._waiters):
                    if not future.done() and predicate(message):
                        future.set_result(message)
                        self._waiters.remove((predicate, future))
        for future in [*self._replies.values(), *(f for _, f in self._waiters)]:
            if not future.done():
                future.set_exception(ConnectionError("the race websocket closed"))

    def expect(self, predicate: Callable[[Message], bool]) -> asyncio.Future[Message]:
        """A future for the next message matching ``predicate`` (register before causing it)."""
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        return future

    async def command(self, kind: str, **fields: Any) -> tuple[Message, float]:
        """Send a command; (its reply, the wall time it was sent)."""
        self._req += 1
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._replies[self._req] = future
        sent = time.time()
        await self.ws.send(json.dumps({"v": 1, "type": kind, "req": self._req, "race_id": self.race_id, **fields}))
        return await asyncio.wait_for(future, 60), sent

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


@dataclass
class SpectatorResults:
    ready: int = 0
    failed: int = 0
    dropped: int = 0
    messages: int = 0
    laps: list[tuple[float, float]] = field(default_factory=list)  # (emitted_at, received)


async def _spectator(
    url: str, race_id: int, out: SpectatorResults, gate: asyncio.Semaphore, settled: Callable[[], None]
) -> None:
    try:
        async with gate:
            ws = await websockets.connect(url, max_size=2**22, open_timeout=60)
            await ws.send(json.dumps({"v": 1, "type": "subscribe", "req": 1, "race_id": race_id}))
            while json.loads(await asyncio.wait_for(ws.recv(), 60))["type"] != "snapshot":
                pass
    except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed):
        out.failed += 1
        settled()
        return
    out.ready += 1
    settled()
    try:
        async for raw in ws:
            received = time.time()
            out.messages += 1
            # only laps are parsed: decoding every telemetry frame would load the clients, not the server
            if isinstance(raw, str) and '"type":"lap"' in raw:
                emitted = json.loads(raw).get("emitted_at")
                if emitted is not None:
                    out.laps.append((float(emitted), received))
    except ConnectionClosed:
        out.dropped += 1


async def _spectators(url: str, race_id: int, count: int, conn: Connection) -> None:
    out = SpectatorResults()
    gate = asyncio.Semaphore(CONNECT_BATCH)
    all_settled = asyncio.Event()

    def settled() -> None:
        if out.ready + out.failed == count:
            all_settled.set()

    tasks = [asyncio.create_task(_spectator(url, race_id, out, gate, settled)) for _ in range(count)]
    await all_settled.wait()
    conn.send(("ready", out.ready, out.failed))
    await asyncio.to_thread(conn.recv)  # "stop"
    conn.send(("done", out))
    for task in tasks:
        task.cancel()


def spectator_process(url: str, race_id: int, count: int, conn: Connection) -> None:
    """Entry point of a spawned client process: ``count`` spectators until told to stop."""
    asyncio.run(_spectators(url, race_id, count, conn))


class Spectators:
    def __init__(self, url: str, race_id: int, count: int, processes: int) -> None:
        ctx = mp.get_context("spawn")
        self.procs: list[tuple[Any, Connection]] = []
        shares = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
        for share in filter(None, shares):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=spectator_process, args=(url, race_id, share, child), daemon=True)
            proc.start()
            child.close()
            self.procs.append((proc, parent))

    @property
    def pids(self) -> set[int]:
        return {proc.pid for proc, _ in self.procs}

    async def ready(self) -> tuple[int, int]:
        answers = [await asyncio.to_thread(conn.recv) for _, conn in self.procs]
        return sum(a[1] for a in answers), sum(a[2] for a in answers)

    async def stop(self) -> SpectatorResults:
        total = SpectatorResults()
        for _, conn in self.procs:
            conn.send("stop")
        for proc, conn in self.procs:
            _, part = await asyncio.to_thread(conn.recv)
            total.ready += part.ready
            total.failed += part.failed
            total.dropped += part.dropped
            total.messages += part.messages
            total.laps += part.laps
            proc.terminate()
            await asyncio.to_thread(proc.join, 10)
        return total


@dataclass
class RacerView:
    """What the racer's own connection saw: every tick's telemetry and the laps."""

    telemetry: list[Message] = field(default_factory=list)
    laps: list[Message] = field(default_factory=list)

    def on_message(self, message: Message, _received: float) -> None:
        if message["type"] == "telemetry":
            self.telemetry.append(message)
        elif message["type"] == "lap":
            self.laps.append(message)
