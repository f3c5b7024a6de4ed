"""Which host runs a LIVE race: the simulator, or the physical track when a car is assigned.

``FleetHostFactory`` wraps the queue service's host factory. Its hosts decide when started (the
organizer's Launch simulator): a race with a car assigned in the fleet runs on the physical track
(``PhysicalHost``), any other race on the simulator (the wrapped factory's RaceHost). The
timekeeper and the lap sensor find a race's physical host with ``physical(race_id)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg

from race_server.db import fleet
from race_server.fleet.links import CarLinks
from race_server.fleet.physical_host import PhysicalHost
from race_server.live.events import HostEvent
from race_server.races.ranking import Lap


class FleetHostFactory:
    def __init__(self, pool: asyncpg.Pool, links: CarLinks, data_dir: Path, virtual: Callable[[int], Any]) -> None:
        self.pool = pool
        self.links = links
        self.data_dir = data_dir
        self.virtual = virtual
        self.hosts: dict[int, PhysicalHost] = {}

    def __call__(self, race_id: int) -> TrackHost:
        return TrackHost(race_id, self)

    def physical(self, race_id: int) -> PhysicalHost | None:
        return self.hosts.get(race_id)


class TrackHost:
    """Proxy with the Host interface; the real host is chosen in ``start``."""

    def __init__(self, race_id: int, factory: FleetHostFactory) -> None:
        self.race_id = race_id
        self.factory = factory
        self.inner: Any = None

    async def start(self, route_id: str, reverse: bool, laps: Sequence[Lap] = ()) -> None:
        car = await fleet.for_race(self.factory.pool, self.race_id)
        if car is not None:
            host = PhysicalHost(self.race_id, car.id, self.factory.links, self.factory.data_dir)
            self.factory.hosts[self.race_id] = host
            self.inner = host
        else:
            self.inner = self.factory.virtual(self.race_id)
        await self.inner.start(route_id, reverse, laps)

    @property
    def n_sectors(self) -> int:
        if isinstance(self.inner, PhysicalHost):
            return 1  # a lap sensor marks only the start line
        return int(getattr(self.inner, "n_sectors", 3))

    @property
    def camera_car(self) -> int | None:
        """The car whose camera is this race's picture, once started on the physical track."""
        return self.inner.car_id if isinstance(self.inner, PhysicalHost) else None

    def _host(self) -> Any:
        if self.inner is None:
            raise RuntimeError("the race host is not started")
        return self.inner

    async def launch(self, spec: Any) -> None:
        await self._host().launch(spec)

    async def set_speed_multiplier(self, multiplier: float) -> float:
        value: float = await self._host().set_speed_multiplier(multiplier)
        return value

    async def abort(self, reason: str) -> None:
        await self._host().abort(reason)

    async def clear_timing(self) -> None:
        await self._host().clear_timing()

    def events(self) -> AsyncIterator[HostEvent]:
        events: AsyncIterator[HostEvent] = self._host().events()
        return events

    async def close(self) -> None:
        if self.inner is None:
            return
        inner = self.inner
        if self.factory.hosts.get(self.race_id) is inner:
            del self.factory.hosts[self.race_id]
        await inner.close()

    @property
    def last_speed_ack(self) -> dict[str, Any]:
        ack: dict[str, Any] = getattr(self.inner, "last_speed_ack", {})
        return ack
