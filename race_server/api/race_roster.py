"""A race's racers as JSON (the pages' names for racer ids, the organizer's Racers table) and a
LIVE race's calendar entry (``.ics``, the guide's **Calendar** link).

Organizers see every member with email, join date, removal and submission count; racers and
viewers (broadcast mode) see only the current racers' ids and aliases.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from race_server.api.race_access import RaceAccess, RaceRole
from race_server.api.races import race_route
from race_server.db import races


def _name(row: dict[str, object]) -> str:
    return str(row["alias"] or f"racer-{row['user_id']}")


@race_route()
async def racers(request: Request, access: RaceAccess) -> Response:
    rows = [dict(r) for r in await races.members(request.app.state.pool, access.race.id)]
    if access.role is RaceRole.ORGANIZER:
        found = [
            {
                "user_id": r["user_id"],
                "alias": _name(r),
                "email": r["email"],
                "joined_at": r["joined_at"].isoformat(),
                "removed": r["removed_at"] is not None,
                "submissions": r["submissions"],
            }
            for r in rows
        ]
    else:
        found = [{"user_id": r["user_id"], "alias": _name(r)} for r in rows if r["removed_at"] is None]
    return JSONResponse({"race_id": access.race.id, "racers": found})


def _ics_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _ics_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@race_route()
async def calendar(request: Request, access: RaceAccess) -> Response:
    race = access.race
    config = race.config
    page = str(request.base_url).rstrip("/") + f"/races/{race.id}/live"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Trackside//LIVE race//EN",
        "CALSCALE:GREGORIAN",
        "BEGIN:VEVENT",
        f"UID:trackside-race-{race.id}@{request.url.hostname or 'trackside'}",
        f"DTSTAMP:{_ics_time(datetime.now(UTC))}",
        f"DTSTART:{_ics_time(config.start)}",
        f"DTEND:{_ics_time(config.end)}",
        f"SUMMARY:{_ics_text('LIVE race: ' + config.name)}",
        f"DESCRIPTION:{_ics_text((config.description + chr(10) + chr(10) if config.description else '') + page)}",
        f"URL:{page}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return Response(
        "\r\n".join(lines) + "\r\n",
        media_type="text/calendar",
        headers={"Content-Disposition": f'attachment; filename="race-{race.id}.ics"'},
    )


routes: list[BaseRoute] = [
    Route("/api/races/{race_id:int}/racers", racers, methods=["GET"]),
    Route("/api/races/{race_id:int}/calendar.ics", calendar, methods=["GET"]),
]
