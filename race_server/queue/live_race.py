"""One LIVE race as this process holds it in memory while it owns it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from race_server.queue.machine import QueueMachine
from race_server.races.config import RaceConfig

if TYPE_CHECKING:
    from race_server.queue.hosting import Host

Event = dict[str, Any]


@dataclass
class LiveRace:
    race_id: int
    config: RaceConfig
    machine: QueueMachine
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    host: Host | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    clock: float = 0.0
    telemetry_seq: int = 0
    last_telemetry: dict[str, Any] | None = None
    # Sector/penalty events not stored yet (held back: see HostAdapter.on_event).
    timing: list[Event] = field(default_factory=list)
    # Set while the database is unreachable and host events wait to be stored (see HostAdapter).
    degraded: str | None = None

    def now(self) -> float:
        self.clock = max(self.clock, time.time())
        return self.clock

    def at(self, instant: float) -> float:
        """A scheduled instant reached (the host's clock said so): time never runs backwards."""
        self.clock = max(self.clock, instant)
        return self.clock
