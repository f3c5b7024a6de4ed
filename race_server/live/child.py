"""The simulator process: a ``LiveSession`` driven by the 15 Hz clock, commanded over a pipe.

Messages both ways are tuples ``(op, req, payload)``. Parent → child ops: launch, speed, abort,
reset, clear, stats, close. Child → parent: ready / fatal (start-up), events (a list, in order),
ack / nack (answering ``req``). While no run is on the process blocks on the pipe; during a run it
waits for each tick's deadline with ``poll`` so commands are read the moment they arrive, and
speed changes take effect at the next tick, before that tick's action is computed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from race_server.lifeline import bind_to_parent
from race_server.live.clock import TickClock
from race_server.live.session import DT, LiveSession
from race_server.races.ranking import Lap

PRIORITY_BOOST = -5
RT_PRIORITY = 1  # the lowest real-time priority: above every normal process, below kernel threads
SPIN_S = 0.002  # the last 2 ms before a deadline are spent polling the pipe without sleeping


def _raise_priority(realtime: bool) -> str:
    """Put the race clock ahead of training workers (niced +10) and the web server, as far as the
    process is permitted: a real-time round-robin slot (the kernel still throttles real-time tasks
    to 95 % of a CPU, so a runaway model cannot freeze the machine), else a nice boost. A host
    stepping as fast as possible (tests) keeps normal priority: it would hog a CPU."""
    if not realtime:
        return "normal"
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(RT_PRIORITY))
        return f"SCHED_RR {RT_PRIORITY}"
    with contextlib.suppress(PermissionError):
        os.nice(PRIORITY_BOOST)
        return f"nice {PRIORITY_BOOST}"
    return "normal"


def _stamp(events: list[dict[str, Any]], tick_at: float, late_ms: float) -> None:
    """Wall-clock marks that let a client measure the whole path (``trackside bench race``): when
    the tick that applied a speed change started and how late, and when a lap left the simulator."""
    emitted_at = time.time()
    for event in events:
        if event["type"] == "telemetry":
            event["tick_at"], event["tick_late_ms"] = tick_at, late_ms
        elif event["type"] == "lap":
            event["emitted_at"] = emitted_at


class _Loop:
    def __init__(self, conn: Connection, session: LiveSession, realtime: bool) -> None:
        self.conn = conn
        self.session = session
        self.realtime = realtime
        self.clock = TickClock(DT)
        self.pending_speed: list[tuple[int, float]] = []
        self.deferred: list[tuple[str, int, Any]] = []  # commands that arrived mid-tick
        self.tick_started = 0.0
        self.closing = False
        if realtime:
            self.session.between_substeps = self.between_substeps

    def send(self, op: str, req: int | None, payload: Any) -> None:
        self.conn.send((op, req, payload))

    def run(self) -> None:
        while not self.closing:
            if not self.session.running:
                self.handle(self.conn.recv())
                continue
            self.wait_for_tick()
            if self.session.running and not self.closing:
                self.tick()

    def wait_for_tick(self) -> None:
        deferred, self.deferred = self.deferred, []
        for message in deferred:
            self.handle(message)
        if not self.realtime:
            while self.conn.poll(0) and self.session.running:
                self.handle(self.conn.recv())
            return
        while self.session.running and not self.closing:
            remaining = self.clock.remaining()
            if remaining <= 0.0:
                return
            # sleep until just before the deadline, then spin: a wake-up from sleep can be late by
            # the scheduler's latency on a loaded machine, a spinning process is already running
            if self.conn.poll(max(remaining - SPIN_S, 0.0)):
                self.handle(self.conn.recv())

    def between_substeps(self, substep: int) -> None:
        """Wait for physics sub-step ``substep`` of this tick to be due; a speed change that arrives
        meanwhile applies from that sub-step on. Other commands wait for the end of the tick."""
        due = self.tick_started + substep * DT / self.session.sim.config.substeps
        while self.conn.poll(max(due - time.perf_counter(), 0.0)):
            op, req, payload = self.conn.recv()
            if op != "speed" or not self.session.running:
                self.deferred.append((op, req, payload))
                continue
            applied_at = time.time()
            events = self.session.set_multiplier(float(payload))
            for event in events:
                event["applied_at"] = applied_at
            if events:
                self.send("events", None, events)
            self.send(
                "ack",
                req,
                {
                    "multiplier": float(payload),
                    "step": None,
                    "applied_mono": time.monotonic(),
                    "applied_at": applied_at,
                    "ticked": True,
                },
            )

    def tick(self) -> None:
        started = self.clock.mark() if self.realtime else 0.0
        self.tick_started = started
        applied_at = time.monotonic()
        tick_at = time.time()
        late_ms = self.clock.lateness_ms[-1] if self.realtime else 0.0
        speed, self.pending_speed = self.pending_speed, []
        events: list[dict[str, Any]] = []
        for _, value in speed:
            for event in self.session.set_multiplier(value):
                event["applied_at"] = tick_at
                events.append(event)
        events += self.session.tick()
        if events:
            _stamp(events, tick_at, late_ms)
            self.send("events", None, events)
        for req, value in speed:
            self.send(
                "ack",
                req,
                {
                    "multiplier": value,
                    "step": self.session.last_step,
                    "applied_mono": applied_at,
                    "applied_at": tick_at,
                    "ticked": True,
                },
            )
        if self.realtime:
            self.clock.done(started)

    def handle(self, message: tuple[str, int, Any]) -> None:
        op, req, payload = message
        session = self.session
        if op == "speed":
            if session.running:
                self.pending_speed.append((req, float(payload)))
                return
            self.send(
                "ack",
                req,
                {"multiplier": float(payload), "step": None, "applied_mono": time.monotonic(), "ticked": False},
            )
            return
        try:
            if op == "launch":
                if session.running:
                    raise RuntimeError(f"run {session.run.spec.run_id if session.run else '?'} is still on track")
                events = session.launch(payload)
                self.pending_speed = []
                self.clock.start()
            elif op == "abort":
                events = session.abort(str(payload))
            elif op == "reset":
                events = session.reset()
            elif op == "clear":
                session.clear_timing()
                events = []
            elif op == "stats":
                self.send("ack", req, self.clock.stats(reset=bool(payload)))
                return
            elif op == "close":
                self.closing = True
                events = []
            else:
                raise ValueError(f"unknown command {op!r}")
        except Exception as error:
            self.send("nack", req, f"{type(error).__name__}: {error}")
            return
        if events:
            self.send("events", None, events)
        self.send("ack", req, None)


def child_main(
    conn: Connection,
    race_id: int,
    route_id: str,
    reverse: bool,
    n_sectors: int,
    laps: list[Lap],
    realtime: bool,
    parent_pid: int,
) -> None:
    """Process entry point (spawned by ``RaceHost.start``)."""
    bind_to_parent(parent_pid)
    priority = _raise_priority(realtime)
    try:
        session = LiveSession(race_id, route_id, reverse, n_sectors=n_sectors, laps=laps)
    except Exception as error:
        conn.send(("fatal", None, f"{type(error).__name__}: {error}"))
        conn.close()
        return
    conn.send(("ready", None, {"pid": os.getpid(), "priority": priority}))
    loop = _Loop(conn, session, realtime)
    try:
        loop.run()
    except (EOFError, BrokenPipeError):
        pass  # the parent went away: nothing left to race for
    except Exception as error:
        traceback.print_exc(file=sys.stderr)
        with contextlib.suppress(OSError):
            conn.send(("fatal", None, f"{type(error).__name__}: {error}"))
        conn.close()
        sys.exit(1)
    conn.close()
