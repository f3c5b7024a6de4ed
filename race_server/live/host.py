"""RaceHost: one LIVE race's simulator in its own process, stepping at 15 Hz real time.

The server process (asyncio, hundreds of websocket clients) must not make the race clock jitter,
so the simulation, the racer's policy and the timing live in a spawned child process
(``race_server.live.child``) with its own deadline clock; this class is the asyncio side. The
child's pipe is watched with ``loop.add_reader``, so the event loop never blocks on it: commands
are sent and answered by acknowledgement, events are queued for ``events()`` in order.

Events are dicts with ``type``, ``race_id``, ``run_id`` and ``t`` (sim seconds since Go); their
types and fields are listed in ``race_server.live.session`` and ``to_protocol(event)`` gives the
``race_server.protocol`` message for each one that has a protocol shape. If the child dies the
host emits ``host_error {message}`` and, if a run was on track, ``run_end {reason: run_failed}``.

The child raises its own scheduling priority where permitted (``child._raise_priority``): a
real-time round-robin slot, else nice -5, so training workers and the web server cannot delay a tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from race_server.live.child import child_main
from race_server.live.events import HostEvent, from_wire, to_protocol
from race_server.live.session import Event
from race_server.live.spec import DriverSpec, RunSpec, check_multiplier
from race_server.piped_child import PipedChild
from race_server.races.ranking import Lap

__all__ = ["DriverSpec", "RaceHost", "RaceHostError", "RunSpec", "to_protocol"]

START_TIMEOUT_S = 60.0
CLOSE_TIMEOUT_S = 3.0


class RaceHostError(RuntimeError):
    """The simulator process refused a command, is not running, or died."""


class RaceHost:
    """One LIVE race's simulator in its own process, stepping at 15 Hz real time."""

    def __init__(self, race_id: int, *, n_sectors: int = 3, realtime: bool = True) -> None:
        self.race_id = race_id
        self.n_sectors = n_sectors
        self.realtime = realtime
        self._child: PipedChild | None = None
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ready: asyncio.Future[Any] | None = None
        self._req = 0
        self._run: RunSpec | None = None
        self._run_laps = 0
        self._last_t = 0.0
        self._fatal: str | None = None
        self._closing = False
        self._ended = False
        self.speed_apply_ms: list[float] = []  # parent send -> applied at a sim tick, per speed change
        self.last_speed_ack: dict[str, Any] = {}  # the child's answer: multiplier, step, applied_mono
        self.priority = ""  # the simulator process's scheduling: "SCHED_RR 1", "nice -5" or "normal"

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    @property
    def alive(self) -> bool:
        return self._child is not None and self._child.conn is not None

    async def start(self, route_id: str, reverse: bool, laps: Sequence[Lap] = ()) -> None:
        """Spawn the simulator and wait until it is warm; ``laps`` restores the session's bests."""
        if self._child is not None:
            raise RaceHostError("the simulator is already started; close() it first")
        args = (self.race_id, route_id, reverse, self.n_sectors, list(laps), self.realtime)
        self._child = PipedChild(
            f"racehost-{self.race_id}", child_main, args, on_message=self._on_message, on_gone=self._on_child_gone
        )
        self._fatal, self._closing, self._ended = None, False, False
        self._ready = asyncio.get_running_loop().create_future()
        try:
            self._child.spawn()
        except BaseException:
            self._child = None
            raise
        try:
            ready = await asyncio.wait_for(asyncio.shield(self._ready), START_TIMEOUT_S)
        except BaseException:
            # nobody waits for the handshake any more: a cancelled future is not reported as an
            # exception never retrieved when the shutdown below fails what is pending
            self._ready.cancel()
            await self._shutdown(graceful=False)
            raise
        self.priority = str(ready["priority"])

    async def close(self) -> None:
        """End a run on track (interrupted), stop the process and release its pipe; idempotent."""
        if self._child is None:
            self._end_events()
            return
        if self._run is not None and self.alive:
            with contextlib.suppress(RaceHostError):
                await self.abort("interrupted")
        await self._shutdown(graceful=True)

    async def _shutdown(self, *, graceful: bool) -> None:
        child = self._child
        assert child is not None
        self._closing = True
        if graceful and self.alive:
            with contextlib.suppress(RaceHostError, TimeoutError):
                await asyncio.wait_for(self._call("close"), CLOSE_TIMEOUT_S)
        await child.stop(first_wait_s=CLOSE_TIMEOUT_S if graceful else 0.0, grace_s=CLOSE_TIMEOUT_S)
        self._child = None
        self._fail_pending("the simulator was closed")
        self._end_events()

    def _end_events(self) -> None:
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(None)

    def _fail_pending(self, message: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(RaceHostError(message))
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(RaceHostError(self._fatal or message))

    # --- the pipe ----------------------------------------------------------------------------
    def _on_message(self, message: tuple[str, int | None, Any]) -> None:
        op, req, payload = message
        self._dispatch(op, req, payload)

    def _dispatch(self, op: str, req: int | None, payload: Any) -> None:
        if op == "events":
            for event in payload:
                self._note(event)
                self._queue.put_nowait(event)
        elif op in ("ack", "nack"):
            future = self._pending.pop(req, None) if req is not None else None
            if future is not None and not future.done():
                if op == "ack":
                    future.set_result(payload)
                else:
                    future.set_exception(RaceHostError(str(payload)))
        elif op == "ready":
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(payload)
        elif op == "fatal":
            self._fatal = str(payload)

    def _note(self, event: Event) -> None:
        self._last_t = float(event.get("t", self._last_t))
        if event["type"] == "lap" and event.get("valid"):
            self._run_laps += 1
        elif event["type"] == "run_end":
            self._run = None

    def _on_child_gone(self) -> None:
        child = self._child
        proc = child.process if child is not None else None
        if child is not None:
            child.detach()
        if self._closing or proc is None:
            return
        proc.join(1.0)
        code = proc.exitcode
        if self._fatal is not None:
            message = f"simulator process failed: {self._fatal}"
        elif code is not None and code < 0:
            message = f"simulator process killed by {signal.Signals(-code).name}"
        else:
            message = f"simulator process exited (exit code {code})"
        run = self._run
        base = {"race_id": self.race_id, "run_id": run.run_id if run else None, "t": self._last_t}
        self._queue.put_nowait({"type": "host_error", **base, "message": message})
        if run is not None:
            self._run = None
            end = {"type": "run_end", **base, "racer_id": run.racer_id, "reason": "run_failed"}
            self._queue.put_nowait({**end, "laps": self._run_laps, "message": message})
        self._fail_pending(message)

    async def _call(self, op: str, payload: Any = None) -> Any:
        conn = self._child.conn if self._child is not None else None
        if conn is None:
            failed = f" (it failed: {self._fatal})" if self._fatal else ""
            raise RaceHostError(f"the simulator is not running; start() it first{failed}")
        self._req += 1
        req = self._req
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req] = future
        try:
            conn.send((op, req, payload))
        except OSError as error:
            self._pending.pop(req, None)
            raise RaceHostError(f"the simulator process is gone ({error})") from error
        return await future

    # --- commands ----------------------------------------------------------------------------
    async def launch(self, spec: RunSpec) -> None:
        """Load the racer's model and put the car on the start line; countdown, then Go.

        A model that cannot be loaded does not raise: the run ends with run_end run_failed."""
        if self._run is not None:
            raise RaceHostError(f"run {self._run.run_id} is still on track")
        if spec.race_id != self.race_id:
            raise RaceHostError(f"run {spec.run_id} belongs to race {spec.race_id}, not {self.race_id}")
        self._run, self._run_laps = spec, 0
        try:
            await self._call("launch", spec)
        except RaceHostError:
            if self._run is spec and self.alive:
                self._run = None
            raise

    async def set_speed_multiplier(self, multiplier: float) -> float:
        """0.5-2.0 in 0.05 steps (ValueError otherwise); returns once the simulator applied it, between
        two physics sub-steps of the tick in progress."""
        value = check_multiplier(multiplier)
        sent = time.monotonic()
        ack = await self._call("speed", value)
        if ack.get("ticked"):
            self.speed_apply_ms.append((float(ack["applied_mono"]) - sent) * 1000.0)
        self.last_speed_ack = ack
        return value

    async def abort(self, reason: str) -> None:
        """End the current run now (run_end with ``reason``, or aborted); no-op without a run."""
        await self._call("abort", reason)

    async def reset(self) -> None:
        """Reset the simulator: a run on track ends (interrupted), the car returns to the start."""
        await self._call("reset")

    async def clear_timing(self) -> None:
        """Clear the leaderboard: the session forgets every lap and best."""
        await self._call("clear")

    async def stats(self, reset: bool = False) -> dict[str, float]:
        """The child's clock figures: tick jitter (lateness against the deadline) and work per tick."""
        result: dict[str, float] = await self._call("stats", reset)
        return result

    def events(self) -> AsyncIterator[HostEvent]:
        """Everything the host emits, in order; ends after ``close()``."""
        return self._events()

    async def _events(self) -> AsyncIterator[HostEvent]:
        while True:
            event = await self._queue.get()
            if event is None:
                self._queue.put_nowait(None)  # later iterators end too
                return
            yield from_wire(event)
