"""Race-level access, on top of the server-wide identities in ``race_server.auth``.

Per race a caller is its organizer (the organizer who created it), a racer (a member who joined
by the invitation link and was not removed), a viewer (a server viewer token made by the race's
organizer, or the race's own viewer token: read-only broadcast pages) — or has no access. Other
organizers have none: organizers are peers on a shared server (docs/security.md). Checked on every request and on every
websocket command, so a removal or a rotated viewer token takes effect at once; the one exception, a
subscribed racer's ``speed_control`` (hot path), relies on removal closing that socket (4403) instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from starlette.requests import HTTPConnection

from race_server import auth
from race_server.auth import AuthError, Principal, Role
from race_server.db import races


class RaceRole(StrEnum):
    ORGANIZER = "organizer"
    RACER = "racer"
    VIEWER = "viewer"


@dataclass(frozen=True)
class RaceAccess:
    race: races.Race
    role: RaceRole
    principal: Principal | None  # None for the race's own viewer token
    race_viewer_token: bool = False

    @property
    def user_id(self) -> int | None:
        return None if self.principal is None else self.principal.user_id


def _presented_token(conn: HTTPConnection) -> str | None:
    token = auth.bearer_token(conn)
    if token is None:
        token = conn.query_params.get("viewer") or None
    return token


async def race_access(
    conn: HTTPConnection, race_id: int, *, allow: tuple[RaceRole, ...] = tuple(RaceRole)
) -> RaceAccess:
    """Who the caller is for this race; AuthError 401 (unknown caller), 403 (no access), 404."""
    pool = conn.app.state.pool
    token = _presented_token(conn)
    if token is not None and token.startswith("tsv_"):
        race = await races.get(pool, race_id)
        if race is not None and await races.viewer_matches(pool, race_id, auth.digest(token)):
            return _allowed(RaceAccess(race, RaceRole.VIEWER, None, race_viewer_token=True), allow)
        raise AuthError(401, "unauthenticated", "this viewer link is not valid (it may have been replaced)")
    principal = await auth.authorise(conn, ())
    race = await races.get(pool, race_id)
    if race is None:
        raise AuthError(404, "not_found", f"no race {race_id}")
    if principal.role is Role.ORGANIZER and principal.user_id == race.organizer_id:
        return _allowed(RaceAccess(race, RaceRole.ORGANIZER, principal), allow)
    if principal.role is Role.RACER and principal.user_id is not None:
        if await races.is_member(pool, race_id, principal.user_id):
            return _allowed(RaceAccess(race, RaceRole.RACER, principal), allow)
        raise AuthError(403, "not_a_member", "you are not a racer in this race: join it with its invitation link")
    if principal.role is Role.VIEWER and principal.organizer_id == race.organizer_id:
        return _allowed(RaceAccess(race, RaceRole.VIEWER, principal), allow)
    raise AuthError(403, "forbidden", f"a {principal.role.value} has no access to this race")


def _allowed(access: RaceAccess, allow: tuple[RaceRole, ...]) -> RaceAccess:
    if access.role not in allow:
        names = ", ".join(r.value for r in allow)
        raise AuthError(403, "forbidden", f"the race's {access.role.value} may not do this (allowed: {names})")
    return access
