"""Sign-up, login/logout, API tokens, cars and invitations."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from race_server import auth
from race_server.api.car_ws import car_links
from race_server.api.errors import ApiError, field, json_body
from race_server.api.socket_watch import socket_watch
from race_server.auth import Role, principal_of, requires, ws_requires
from race_server.db import cars, invitations, server_config, sessions, tokens, users

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
ALIAS = re.compile(r"^[A-Za-z0-9_-]{3,32}$")
INVITATION_TTL_MAX_H = 24 * 90


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _validate_alias(alias: str) -> str:
    if not ALIAS.match(alias):
        raise ApiError(422, "invalid", "alias must be 3-32 letters, digits, '-' or '_'")
    return alias


def _validate_credentials(data: dict[str, Any]) -> tuple[str, str]:
    email = field(data, "email", str).strip()
    password = field(data, "password", str)
    if not EMAIL.match(email):
        raise ApiError(422, "invalid", "email is not a valid address")
    try:
        auth.validate_password(password)
    except ValueError as error:
        raise ApiError(422, "invalid", str(error)) from None
    return email, password


async def signup(request: Request) -> Response:
    data = await json_body(request)
    email, password = _validate_credentials(data)
    alias = data.get("alias")
    if alias is not None:
        alias = _validate_alias(field(data, "alias", str))
    pool = request.app.state.pool
    mode = await server_config.get(pool, "racer_signup")
    code = data.get("invitation")
    needs_invitation = mode != "open"
    invitation = auth.digest(code) if isinstance(code, str) else None
    # The invitation is checked before the password is hashed: without one a request costs a query,
    # not 64 MiB and tens of ms of argon2.
    if needs_invitation and (invitation is None or not await invitations.usable(pool, invitation)):
        raise ApiError(403, "invitation_required", "sign-up needs a valid, unused, unexpired invitation")
    password_hash = await auth.hash_password(password)
    async with pool.acquire() as conn, conn.transaction():
        if needs_invitation and (invitation is None or not await invitations.consume(conn, invitation)):
            raise ApiError(403, "invitation_required", "sign-up needs a valid, unused, unexpired invitation")
        try:
            user = await users.create(conn, role="racer", email=email, password_hash=password_hash, alias=alias)
        except users.DuplicateUser as error:
            raise ApiError(409, "conflict", str(error)) from None
    return JSONResponse({"id": user.id, "email": user.email, "alias": user.alias, "role": user.role}, status_code=201)


async def login(request: Request) -> Response:
    settings = request.app.state.settings
    data = await json_body(request)
    email = field(data, "email", str).strip()
    password = field(data, "password", str)
    pool = request.app.state.pool
    user = await users.by_email(pool, email)
    device = None if user is None else auth.known_device(request, request.app.state.device_signer, user.id)
    async with pool.acquire() as conn:
        # Per address the limit is looser: a race-day venue puts many racers behind one NAT.
        attempt = await users.reserve_login_attempt(
            conn,
            email=email,
            client_ip=_client_ip(request),
            device=device,
            window_s=settings.login_window_s,
            max_failures=settings.login_max_failures,
            max_per_ip=settings.login_max_failures * 4,
        )
    if attempt is None:
        raise ApiError(
            429,
            "rate_limited",
            f"too many failed logins; try again in {settings.login_window_s} s "
            "(or from a browser you signed in with before)",
            headers={"Retry-After": str(settings.login_window_s)},
        )
    ok = await auth.verify_password(user.password_hash if user else _DUMMY_HASH, password)
    if user is None or not ok:
        request.app.state.metrics.login_failures.inc()
        raise ApiError(401, "bad_credentials", "wrong email or password")
    await users.forgive_login_attempt(pool, attempt)
    response = JSONResponse({"id": user.id, "email": user.email, "alias": user.alias, "role": user.role})
    await start_session(request, user.id, response)
    return response


DEVICE_MAX_AGE_S = 365 * 24 * 3600


async def start_session(request: Request, user_id: int, response: Response) -> None:
    """Sign the user in on this browser: a new session row and its signed HttpOnly cookie, and a
    device cookie that outlives the session (its own login budget: see users.reserve_login_attempt)."""
    settings = request.app.state.settings
    secret = auth.new_secret("tss")
    await sessions.create(request.app.state.pool, user_id, auth.digest(secret), settings.session_max_age_s)
    response.set_cookie(
        auth.SESSION_COOKIE,
        request.app.state.signer.sign(secret).decode(),
        max_age=settings.session_max_age_s,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )
    if auth.known_device(request, request.app.state.device_signer, user_id) is None:
        _, cookie = auth.new_device(user_id, request.app.state.device_signer)
        response.set_cookie(
            auth.DEVICE_COOKIE,
            cookie,
            max_age=DEVICE_MAX_AGE_S,
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies,
            path="/api/auth/",
        )


# Verifying against a dummy hash when the email is unknown keeps response times equal, so login
# cannot be used to find out which emails have accounts.
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$YjOaGRw/mGHiNV1DKgNdCg$+ctzOF10ntuPbZp10bNpgkbvX3zPxkM+REuj6S7eUeo"


@requires()
async def logout(request: Request) -> Response:
    principal = principal_of(request)
    if principal.session_id is not None:
        await sessions.delete(request.app.state.pool, principal.session_id)
        socket_watch(request.app.state).revoke(session_id=principal.session_id)
    response = JSONResponse({"ok": True})
    response.delete_cookie(auth.SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@requires()
async def me(request: Request) -> Response:
    return JSONResponse(principal_of(request).public())


@requires(Role.RACER, Role.ORGANIZER)
async def choose_alias(request: Request) -> Response:
    principal = principal_of(request)
    alias = _validate_alias(field(await json_body(request), "alias", str))
    assert principal.user_id is not None
    try:
        user = await users.set_alias(request.app.state.pool, principal.user_id, alias)
    except users.DuplicateUser as error:
        raise ApiError(409, "conflict", str(error)) from None
    except users.AliasFixed:
        raise ApiError(409, "alias_fixed", f"your alias is already {principal.alias!r} and cannot change") from None
    return JSONResponse({"alias": user.alias})


def _token_json(info: tokens.TokenInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "kind": info.kind,
        "name": info.name,
        "car_id": info.car_id,
        "created_at": info.created_at.isoformat(),
        "last_used_at": info.last_used_at.isoformat() if info.last_used_at else None,
        "revoked": info.revoked_at is not None,
    }


def _token_name(data: dict[str, Any]) -> str:
    name: str = field(data, "name", str).strip()
    if not 1 <= len(name) <= 64:
        raise ApiError(422, "invalid", "name must be 1-64 characters")
    return name


@requires(Role.ORGANIZER, Role.RACER)
async def create_token(request: Request) -> Response:
    principal = principal_of(request)
    data = await json_body(request)
    name = _token_name(data)
    kind = field(data, "kind", str, required=False, default="user")
    if kind not in ("user", "viewer"):
        raise ApiError(422, "invalid", "kind must be 'user' or 'viewer' (car tokens come with POST /api/cars)")
    if kind == "viewer" and principal.role is not Role.ORGANIZER:
        raise ApiError(403, "forbidden", "only organizers create viewer tokens")
    assert principal.user_id is not None
    secret = auth.new_secret("tsk")
    info = await tokens.create(
        request.app.state.pool,
        kind=kind,
        name=name,
        token_hash=auth.digest(secret),
        created_by=principal.user_id,
        user_id=principal.user_id if kind == "user" else None,
    )
    return JSONResponse({**_token_json(info), "token": secret}, status_code=201)


@requires(Role.ORGANIZER, Role.RACER)
async def list_tokens(request: Request) -> Response:
    principal = principal_of(request)
    assert principal.user_id is not None
    found = await tokens.list_created_by(request.app.state.pool, principal.user_id)
    return JSONResponse({"tokens": [_token_json(info) for info in found]})


@requires(Role.ORGANIZER, Role.RACER)
async def revoke_token(request: Request) -> Response:
    principal = principal_of(request)
    assert principal.user_id is not None
    token_id = request.path_params["token_id"]
    revoked = await tokens.revoke(request.app.state.pool, token_id, by_user=principal.user_id, any_owner=False)
    if not revoked:
        raise ApiError(404, "not_found", f"no live token {token_id} of yours")
    socket_watch(request.app.state).revoke(token_id=token_id)
    return JSONResponse({"ok": True})


@requires(Role.ORGANIZER, Role.RACER)
async def create_car(request: Request) -> Response:
    principal = principal_of(request)
    assert principal.user_id is not None
    name = _token_name(await json_body(request))
    if not re.match(r"^[A-Za-z0-9 _.-]{1,64}$", name):
        raise ApiError(422, "invalid", "car name may use letters, digits, space, '_', '.', '-'")
    pool = request.app.state.pool
    secret = auth.new_secret("tsc")
    async with pool.acquire() as conn, conn.transaction():
        try:
            car = await cars.create(conn, principal.user_id, name)
        except cars.DuplicateCar as error:
            raise ApiError(409, "conflict", str(error)) from None
        info = await tokens.create(
            conn, kind="car", name=name, token_hash=auth.digest(secret), created_by=principal.user_id, car_id=car.id
        )
    car_links(request.app.state).changes.notify()  # the fleet page shows the new car
    return JSONResponse({"car_id": car.id, "name": car.name, "token_id": info.id, "token": secret}, status_code=201)


@requires(Role.ORGANIZER)
async def create_invitation(request: Request) -> Response:
    principal = principal_of(request)
    assert principal.user_id is not None
    data = await json_body(request)
    max_uses = field(data, "max_uses", int, required=False, default=1)
    hours = field(data, "expires_in_hours", int, required=False, default=72)
    if not 1 <= max_uses <= 10_000:
        raise ApiError(422, "invalid", "max_uses must be 1-10000")
    if not 1 <= hours <= INVITATION_TTL_MAX_H:
        raise ApiError(422, "invalid", f"expires_in_hours must be 1-{INVITATION_TTL_MAX_H}")
    code = auth.new_secret("tsi")
    invitation_id, expires_at = await invitations.create(
        request.app.state.pool,
        code_hash=auth.digest(code),
        created_by=principal.user_id,
        max_uses=max_uses,
        ttl_s=hours * 3600,
    )
    return JSONResponse(
        {"id": invitation_id, "code": code, "max_uses": max_uses, "expires_at": expires_at.isoformat()},
        status_code=201,
    )


@requires(Role.ORGANIZER)
async def set_signup_mode(request: Request) -> Response:
    mode = field(await json_body(request), "mode", str)
    if mode not in server_config.SIGNUP_MODES:
        raise ApiError(422, "invalid", f"mode must be one of {', '.join(server_config.SIGNUP_MODES)}")
    await server_config.put(request.app.state.pool, "racer_signup", mode)
    return JSONResponse({"mode": mode})


@ws_requires()
async def ws_session(websocket: WebSocket) -> None:
    """The general websocket: says who you are; race subscriptions arrive with the races issue."""
    await websocket.accept()
    await websocket.send_json({"type": "hello", "protocol": 1, "principal": principal_of(websocket).public()})
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is None:
            await websocket.close(code=auth.WS_UNSUPPORTED_DATA, reason="this socket takes text frames only")
            return
        await websocket.send_json({"type": "error", "error": "no commands are available on this server yet"})


routes: list[BaseRoute] = [
    Route("/api/auth/signup", signup, methods=["POST"]),
    Route("/api/auth/login", login, methods=["POST"]),
    Route("/api/auth/logout", logout, methods=["POST"]),
    Route("/api/auth/me", me, methods=["GET"]),
    Route("/api/auth/alias", choose_alias, methods=["POST"]),
    Route("/api/tokens", create_token, methods=["POST"]),
    Route("/api/tokens", list_tokens, methods=["GET"]),
    Route("/api/tokens/{token_id:int}", revoke_token, methods=["DELETE"]),
    Route("/api/cars", create_car, methods=["POST"]),
    Route("/api/invitations", create_invitation, methods=["POST"]),
    Route("/api/server/signup-mode", set_signup_mode, methods=["PUT"]),
    WebSocketRoute("/ws", ws_session),
]
