"""Fleet repository: the organizer's view of the cars (status, colour, race assignment)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool
_COLUMNS = "id, owner_id, name, tail_light, hardware, software, last_seen_at, race_id, created_at"


@dataclass(frozen=True)
class FleetCar:
    id: int
    owner_id: int
    name: str
    tail_light: str
    hardware: str | None
    software: str | None
    last_seen_at: datetime | None
    race_id: int | None
    created_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner_id": self.owner_id,
            "name": self.name,
            "tail_light": self.tail_light,
            "hardware": self.hardware,
            "software": self.software,
            "last_seen_at": self.last_seen_at.isoformat() if self.last_seen_at else None,
            "race_id": self.race_id,
        }


class CarTaken(ValueError):
    pass


async def all_cars(conn: Conn) -> list[FleetCar]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM cars ORDER BY id")
    return [FleetCar(**dict(row)) for row in rows]


async def get(conn: Conn, car_id: int) -> FleetCar | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM cars WHERE id = $1", car_id)
    return FleetCar(**dict(row)) if row else None


async def for_race(conn: Conn, race_id: int) -> FleetCar | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM cars WHERE race_id = $1", race_id)
    return FleetCar(**dict(row)) if row else None


async def seen(conn: Conn, car_id: int, hardware: str | None = None, software: str | None = None) -> None:
    await conn.execute(
        "UPDATE cars SET last_seen_at = now(), hardware = coalesce($2, hardware), software = coalesce($3, software) "
        "WHERE id = $1",
        car_id,
        hardware,
        software,
    )


async def update(conn: Conn, car_id: int, *, name: str | None, tail_light: str | None) -> FleetCar | None:
    try:
        row = await conn.fetchrow(
            f"UPDATE cars SET name = coalesce($2, name), tail_light = coalesce($3, tail_light) WHERE id = $1 "
            f"RETURNING {_COLUMNS}",
            car_id,
            name,
            tail_light,
        )
    except asyncpg.UniqueViolationError:
        raise CarTaken(f"the owner already has a car named {name!r}") from None
    return FleetCar(**dict(row)) if row else None


async def assign(conn: Conn, car_id: int, race_id: int | None) -> FleetCar | None:
    try:
        row = await conn.fetchrow(f"UPDATE cars SET race_id = $2 WHERE id = $1 RETURNING {_COLUMNS}", car_id, race_id)
    except asyncpg.UniqueViolationError:
        raise CarTaken(f"race {race_id} already has a car; unassign it first") from None
    return FleetCar(**dict(row)) if row else None
