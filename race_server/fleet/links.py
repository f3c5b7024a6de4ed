"""The cars linked to this server process, and commands to them with their replies.

``CarLinks`` (``app.state.car_links``) maps car id → ``CarLink``; a car that links again replaces
its older link (which is closed). ``CarLink.command(kind, **fields)`` sends a
``race_server.protocol`` car command with a fresh ``req`` and waits for the car's ``ok`` (its data)
or ``error`` (raised as ``CarCommandError`` with the car's code and message). A link that closes
fails its waiting commands with ``car_offline``. Car bundles offered to a car (``offer_bundle``)
are the only files that car may download. ``CarLinks.changes`` tells the fleet page's socket
(``/ws/fleet``) that a car linked, unlinked, reported telemetry or was renamed or assigned.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from race_server import protocol as p

log = logging.getLogger("trackside.fleet")
COMMAND_TIMEOUT_S = 5.0


class CarCommandError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Changes:
    """Wakes every watcher when something about the fleet changed; watchers coalesce bursts."""

    def __init__(self) -> None:
        self._watchers: set[asyncio.Event] = set()

    def notify(self) -> None:
        for event in self._watchers:
            event.set()

    @contextlib.contextmanager
    def watch(self) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._watchers.add(event)
        try:
            yield event
        finally:
            self._watchers.discard(event)


class CarLink:
    def __init__(
        self,
        car_id: int,
        name: str,
        hello: p.CarHello,
        send: Callable[[str], Awaitable[None]],
        close: Callable[[int, str], Awaitable[None]],
    ) -> None:
        self.car_id = car_id
        self.name = name
        self.hello = hello
        self.telemetry: p.CarTelemetry | None = None
        self.connected_at = time.time()
        self.last_heartbeat = time.monotonic()
        self.rtt_ms: float | None = None
        self.closed = False
        self._send = send
        self._close = close
        self._reqs = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, Any] | None]] = {}
        self._peer_t: tuple[float, float] | None = None
        self._send_lock = asyncio.Lock()

    async def send(self, frame: str) -> None:
        async with self._send_lock:
            await self._send(frame)

    async def command(self, kind: str, *, wait_s: float = COMMAND_TIMEOUT_S, **fields: Any) -> dict[str, Any] | None:
        if self.closed:
            raise CarCommandError("car_offline", f"car {self.car_id} is not linked")
        model = p.CAR_COMMAND_TYPES.get(kind)
        if model is None or kind in ("welcome", "heartbeat"):
            raise CarCommandError("unknown_type", f"{kind!r} is not a car command")
        req = f"s{next(self._reqs)}"
        message = model.model_validate({"req": req, **fields})
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._pending[req] = future
        try:
            await self.send(p.encode_car_frame(message))  # type: ignore[arg-type]
            return await asyncio.wait_for(future, wait_s)
        except TimeoutError:
            raise CarCommandError(
                "car_timeout", f"car {self.car_id} did not answer {kind} within {wait_s:g} s"
            ) from None
        finally:
            self._pending.pop(req, None)

    def on_reply(self, reply: p.CarOk | p.CarError) -> None:
        future = self._pending.get(str(reply.req)) if reply.req is not None else None
        if future is None or future.done():
            if isinstance(reply, p.CarError):
                log.warning("car %s: %s: %s", self.car_id, reply.code, reply.message)
            return
        if isinstance(reply, p.CarOk):
            future.set_result(reply.data)
        else:
            future.set_exception(CarCommandError(reply.code, reply.message))

    def on_heartbeat(self, beat: p.CarHeartbeat) -> None:
        now = time.monotonic()
        self.last_heartbeat = now
        self._peer_t = (beat.t, now)
        if beat.echo_t is not None:
            self.rtt_ms = max(0.0, (now - beat.echo_t) * 1000.0 - (beat.held_ms or 0.0))

    def heartbeat(self, seq: int) -> p.CarHeartbeat:
        now = time.monotonic()
        echo = held = None
        if self._peer_t is not None:
            echo, received = self._peer_t
            held = (now - received) * 1000.0
        return p.CarHeartbeat(seq=seq, t=now, echo_t=echo, held_ms=held)

    async def close(self, code: int, reason: str) -> None:
        self.fail_pending()
        with contextlib.suppress(Exception):
            await self._close(code, reason)

    def fail_pending(self) -> None:
        self.closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(CarCommandError("car_offline", f"car {self.car_id} went offline"))

    def status(self) -> dict[str, Any]:
        t = self.telemetry
        return {
            "online": not self.closed,
            "connected_at": self.connected_at,
            "rtt_ms": self.rtt_ms,
            "hardware": self.hello.hardware,
            "software": self.hello.software,
            "capabilities": list(self.hello.capabilities),
            "models": list(self.hello.models),
            "calibration": self.hello.calibration.model_dump(),
            "telemetry": t.model_dump(exclude={"v", "type"}) if t is not None else None,
        }


class CarLinks:
    def __init__(self) -> None:
        self.links: dict[int, CarLink] = {}
        self._bundles: dict[tuple[int, str], Path] = {}
        self.changes = Changes()

    def get(self, car_id: int) -> CarLink | None:
        link = self.links.get(car_id)
        return link if link is not None and not link.closed else None

    async def attach(self, link: CarLink) -> None:
        old = self.links.get(link.car_id)
        self.links[link.car_id] = link
        self.changes.notify()
        if old is not None and old is not link:
            await old.close(4009, "replaced by a newer link from the same car")

    def detach(self, link: CarLink) -> None:
        link.fail_pending()
        if self.links.get(link.car_id) is link:
            del self.links[link.car_id]
        self.changes.notify()

    async def command(self, car_id: int, kind: str, **fields: Any) -> dict[str, Any] | None:
        link = self.get(car_id)
        if link is None:
            raise CarCommandError("car_offline", f"car {car_id} is not linked to this server")
        return await link.command(kind, **fields)

    async def estop_all(self) -> dict[int, str]:
        """Every linked car, at once; the answer per car: "ok" or the error."""
        links = [link for link in self.links.values() if not link.closed]
        results = await asyncio.gather(*(link.command("estop") for link in links), return_exceptions=True)
        out: dict[int, str] = {}
        for link, result in zip(links, results, strict=True):
            out[link.car_id] = "ok" if not isinstance(result, BaseException) else f"{result}"
        return out

    def offer_bundle(self, car_id: int, sha256: str, path: Path) -> None:
        self._bundles[(car_id, sha256)] = path

    def bundle_for(self, car_id: int, sha256: str) -> Path | None:
        return self._bundles.get((car_id, sha256))

    async def close(self) -> None:
        for link in list(self.links.values()):
            await link.close(1001, "server stopping")
        self.links.clear()
