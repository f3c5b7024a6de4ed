"""Races over HTTP: create / edit / close / delete, invitation link and joining, racers, viewer
token, submissions, leaderboard and run logs (the pages at ``/`` are ``race_server.api.web``).

Organizer commands that drive a LIVE race (launch, queue, winner …) travel over the race
websocket (``race_server.api.race_ws``); everything here is a thin edge over the repositories,
the queue service and the classic evaluator.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import shutil
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from race_server import auth
from race_server.api.errors import ApiError, field, json_body
from race_server.api.identity import _validate_alias, _validate_credentials, start_session
from race_server.api.models import model_store
from race_server.api.race_access import RaceAccess, RaceRole, race_access
from race_server.auth import AuthError, Role, principal_of, requires
from race_server.db import races, users
from race_server.queue import service
from race_server.queue.run_logs import METRICS, SIMTRACE
from race_server.races import folders
from race_server.races import submissions as rules
from race_server.races.config import RaceConfigError, parse_race_config

ORG = (RaceRole.ORGANIZER,)
MEMBERS = (RaceRole.ORGANIZER, RaceRole.RACER)
Handler = Callable[[Request, RaceAccess], Awaitable[Response]]
_revoke_seq = itertools.count(1)


def now() -> datetime:
    return datetime.now(UTC)


def race_route(*allow: RaceRole) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Resolve the race and the caller's role in it before the handler runs."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                access = await race_access(request, request.path_params["race_id"], allow=allow or tuple(RaceRole))
            except AuthError as error:
                return JSONResponse({"error": error.message, "code": error.code}, status_code=error.status)
            return await handler(request, access)

        return endpoint

    return wrap


def _config_error(error: RaceConfigError) -> ApiError:
    return ApiError(422, "invalid", str(error))


async def revoke(request: Request, race_id: int, **what: Any) -> None:
    """Tell every server process to close matching websockets of this race now."""
    event = {"type": "_revoke", "id": f"revoke-{next(_revoke_seq)}", "race_id": race_id, **what}
    await service.publish(request.app.state.bus, race_id, [event])


# --- races -----------------------------------------------------------------------------------------
@requires(Role.ORGANIZER)
async def create_race(request: Request) -> Response:
    principal = principal_of(request)
    assert principal.user_id is not None
    try:
        config = parse_race_config(await json_body(request))
    except RaceConfigError as error:
        return JSONResponse({"error": str(error), "code": "invalid", "fields": error.by_field()}, status_code=422)
    race = await races.create(request.app.state.pool, principal.user_id, config)
    return JSONResponse(race.as_json(now(), with_invite=True), status_code=201)


@requires()
async def list_races(request: Request) -> Response:
    principal = principal_of(request)
    pool = request.app.state.pool
    if principal.role is Role.ORGANIZER and principal.user_id is not None:
        found = await races.list_for_organizer(pool, principal.user_id)
    elif principal.role is Role.RACER and principal.user_id is not None:
        found = await races.list_for_member(pool, principal.user_id)
    else:
        found = []
    return JSONResponse({"races": [race.as_json(now()) for race in found]})


@race_route()
async def get_race(request: Request, access: RaceAccess) -> Response:
    return JSONResponse({**access.race.as_json(now()), "role": access.role.value})


@race_route(*ORG)
async def edit_race(request: Request, access: RaceAccess) -> Response:
    changes = await json_body(request)
    if "format" in changes and changes["format"] != access.race.format:
        raise ApiError(422, "invalid", "format: a race cannot change between classic and LIVE")
    try:
        config = parse_race_config({**access.race.config.to_dict(), **changes})
    except RaceConfigError as error:
        return JSONResponse({"error": str(error), "code": "invalid", "fields": error.by_field()}, status_code=422)
    await races.update_config(request.app.state.pool, access.race.id, config)
    queue: service.QueueService | None = request.app.state.race_queue
    if queue is not None:
        queue.config_changed(access.race.id, config)
    race = await races.get(request.app.state.pool, access.race.id)
    assert race is not None
    return JSONResponse(race.as_json(now()))


@race_route(*ORG)
async def close_race(request: Request, access: RaceAccess) -> Response:
    config = parse_race_config({**access.race.config.to_dict(), "closed": True})
    await races.update_config(request.app.state.pool, access.race.id, config)
    return JSONResponse({"id": access.race.id, "status": "closed"})


@race_route(*ORG)
async def delete_race(request: Request, access: RaceAccess) -> Response:
    queue: service.QueueService | None = request.app.state.race_queue
    if queue is not None:
        await queue.release(access.race.id)
    await revoke(request, access.race.id, everyone=True)
    await races.delete(request.app.state.pool, access.race.id)
    # its run logs and recordings go with it: nothing links to them any more, and a season of
    # deleted practice races would otherwise fill the disk
    await asyncio.to_thread(remove_folders, folders.race_folders(request.app.state.settings.data_dir, access.race.id))
    return JSONResponse({"ok": True})


def remove_folders(paths: tuple[Path, ...]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


# --- invitation link, joining, racers, viewer token ------------------------------------------------
def _invitation(request: Request, code: str) -> dict[str, Any]:
    return {"code": code, "link": str(request.base_url).rstrip("/") + f"/join/{code}"}


@race_route(*ORG)
async def get_invitation(request: Request, access: RaceAccess) -> Response:
    return JSONResponse(_invitation(request, access.race.invite_code))


@race_route(*ORG)
async def reset_invitation(request: Request, access: RaceAccess) -> Response:
    code = await races.reset_invite(request.app.state.pool, access.race.id)
    return JSONResponse(_invitation(request, code))


async def join(request: Request) -> Response:
    """Join by link: a signed-in racer joins; without an account, sign up here (the link is the
    invitation) and leave signed in."""
    pool = request.app.state.pool
    race = await races.by_invite(pool, request.path_params["code"])
    if race is None:
        raise ApiError(404, "invalid_link", "this invitation link is not valid (it may have been reset)")
    if race.config.status(now()) == "closed":
        raise ApiError(409, "race_closed", "this race is closed")
    principal = await request.app.state.resolve_principal(request)
    if principal is not None:
        if principal.role is not Role.RACER or principal.user_id is None:
            raise ApiError(403, "forbidden", f"a {principal.role.value} cannot join a race as a racer")
        if not await races.add_member(pool, race.id, principal.user_id):
            raise ApiError(403, "removed", "the organizer removed you from this race")
        return JSONResponse({"race_id": race.id, "user_id": principal.user_id})
    data = await json_body(request)
    email, password = _validate_credentials(data)
    alias = data.get("alias")
    if alias is not None:
        alias = _validate_alias(field(data, "alias", str))
    password_hash = await auth.hash_password(password)
    async with pool.acquire() as conn, conn.transaction():
        try:
            user = await users.create(conn, role="racer", email=email, password_hash=password_hash, alias=alias)
        except users.DuplicateUser as error:
            raise ApiError(409, "conflict", f"{error}; sign in first, then open the link again") from None
        await races.add_member(conn, race.id, user.id)
    response = JSONResponse({"race_id": race.id, "user_id": user.id, "alias": user.alias}, status_code=201)
    await start_session(request, user.id, response)
    return response


@race_route(*ORG)
async def remove_racer(request: Request, access: RaceAccess) -> Response:
    user_id = request.path_params["user_id"]
    if not await races.remove_member(request.app.state.pool, access.race.id, user_id):
        raise ApiError(404, "not_found", f"user {user_id} is not a racer in this race")
    await revoke(request, access.race.id, user_id=user_id)
    return JSONResponse({"ok": True})


@race_route(*ORG)
async def participants_csv(request: Request, access: RaceAccess) -> Response:
    rows = await races.members(request.app.state.pool, access.race.id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["user_id", "alias", "email", "joined_at", "removed_at", "submissions"])
    for row in rows:
        removed = row["removed_at"].isoformat() if row["removed_at"] else ""
        writer.writerow(
            [row["user_id"], row["alias"] or "", row["email"], row["joined_at"].isoformat(), removed,
             row["submissions"]]
        )  # fmt: skip
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="race-{access.race.id}-participants.csv"'},
    )


@race_route(*ORG)
async def new_viewer_token(request: Request, access: RaceAccess) -> Response:
    """A fresh read-only token for this race's broadcast pages; the previous one stops working."""
    token = auth.new_secret("tsv")
    await races.set_viewer_hash(request.app.state.pool, access.race.id, auth.digest(token))
    await revoke(request, access.race.id, race_viewers=True)
    return JSONResponse({"token": token, "race_id": access.race.id}, status_code=201)


# --- submissions, leaderboard, run logs ------------------------------------------------------------
async def _check_model(
    request: Request, racer_id: int, data: dict[str, Any]
) -> tuple[int | None, dict[str, Any], str | None]:
    """(model_id, driver, error): error is why the model cannot be loaded (a red row), or None."""
    if data.get("driver") == "reference":
        try:
            return None, rules.reference_driver(data.get("reference_speed", rules.REFERENCE_SPEED_DEFAULT)), None
        except rules.SubmissionRefused as refused:
            raise ApiError(422, refused.code, refused.message) from refused
    model_id = field(data, "model_id", int)
    store = model_store(request)
    record = await store.get(model_id)
    if record is None or record.owner_id != racer_id:
        raise ApiError(404, "not_found", f"you have no model {model_id}")
    if record.status != "ready":
        raise ApiError(409, "model_not_ready", f"model {model_id} is {record.status}, not ready")
    model = await store.race_files(model_id)
    driver = {"kind": "onnx", "metadata": record.metadata}
    return model_id, driver, "the model is gone" if model is None else model.problem


@race_route(RaceRole.RACER)
async def submit(request: Request, access: RaceAccess) -> Response:
    race = access.race
    assert access.user_id is not None
    try:
        rules.check_open(race.config.status(now()))
    except rules.SubmissionRefused as refused:
        raise ApiError(409, refused.code, refused.message) from refused
    model_id, driver, error = await _check_model(request, access.user_id, await json_body(request))
    classic = race.format == "classic"
    state = rules.initial_state(race.config.format, error)
    sub = await races.add_submission(
        request.app.state.pool, race_id=race.id, racer_id=access.user_id, model_id=model_id, driver=driver,
        loadable=error is None, error=error, status=state,
    )  # fmt: skip
    if classic and error is None and request.app.state.race_evaluator is not None:
        request.app.state.race_evaluator.wake()
    return JSONResponse(sub.as_json(), status_code=201)


@race_route(*MEMBERS)
async def list_submissions(request: Request, access: RaceAccess) -> Response:
    racer = None if access.role is RaceRole.ORGANIZER else access.user_id
    subs = await races.submissions(request.app.state.pool, access.race.id, racer)
    return JSONResponse({"submissions": [s.as_json() for s in subs]})


@race_route()
async def get_leaderboard(request: Request, access: RaceAccess) -> Response:
    rows = await service.leaderboard(request.app.state.pool, access.race.id, access.race.config)
    return JSONResponse({"race_id": access.race.id, "ranking": access.race.config.ranking,
                         "rows": [row.to_dict() for row in rows]})  # fmt: skip


async def _run_file(request: Request, access: RaceAccess, name: str, media_type: str) -> Response:
    run_id = request.path_params["run_id"]
    run = await races.run(request.app.state.pool, run_id)
    if run is None or run["race_id"] != access.race.id:
        raise ApiError(404, "not_found", f"no run {run_id} in this race")
    if access.role is RaceRole.RACER and run["racer_id"] != access.user_id:
        raise ApiError(403, "forbidden", "racers download their own runs' logs")
    path = folders.run_dir(request.app.state.settings.data_dir, access.race.id, run_id) / name
    if not path.is_file():
        raise ApiError(404, "not_found", f"run {run_id} has no {name} (yet)")
    return FileResponse(path, media_type=media_type, filename=f"run-{run_id}-{name}")


@race_route(*MEMBERS)
async def run_simtrace(request: Request, access: RaceAccess) -> Response:
    return await _run_file(request, access, SIMTRACE, "text/csv")


@race_route(*MEMBERS)
async def run_metrics(request: Request, access: RaceAccess) -> Response:
    return await _run_file(request, access, METRICS, "application/json")


routes: list[BaseRoute] = [
    Route("/api/races", create_race, methods=["POST"]),
    Route("/api/races", list_races, methods=["GET"]),
    Route("/api/races/{race_id:int}", get_race, methods=["GET"]),
    Route("/api/races/{race_id:int}", edit_race, methods=["PATCH"]),
    Route("/api/races/{race_id:int}", delete_race, methods=["DELETE"]),
    Route("/api/races/{race_id:int}/close", close_race, methods=["POST"]),
    Route("/api/races/{race_id:int}/invitation", get_invitation, methods=["GET"]),
    Route("/api/races/{race_id:int}/invitation/reset", reset_invitation, methods=["POST"]),
    Route("/api/races/{race_id:int}/viewer-token", new_viewer_token, methods=["POST"]),
    Route("/api/races/{race_id:int}/participants.csv", participants_csv, methods=["GET"]),
    Route("/api/races/{race_id:int}/racers/{user_id:int}", remove_racer, methods=["DELETE"]),
    Route("/api/races/{race_id:int}/submissions", submit, methods=["POST"]),
    Route("/api/races/{race_id:int}/submissions", list_submissions, methods=["GET"]),
    Route("/api/races/{race_id:int}/leaderboard", get_leaderboard, methods=["GET"]),
    Route("/api/races/{race_id:int}/runs/{run_id:int}/simtrace.csv", run_simtrace, methods=["GET"]),
    Route("/api/races/{race_id:int}/runs/{run_id:int}/metrics.json", run_metrics, methods=["GET"]),
    Route("/api/join/{code}", join, methods=["POST"]),
]
