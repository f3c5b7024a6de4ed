"""Who is calling, and may they? One place that every HTTP route and websocket goes through.

Identities: organizers and racers (users with argon2 password hashes), viewers (read-only tokens)
and cars (tokens bound to a car). Browsers carry a signed HttpOnly session cookie; the CLI, cars and
broadcast pages carry an API token (`Authorization: Bearer …`, or `?token=` on a websocket, where
browsers cannot set headers). Secrets are stored only as SHA-256 digests: tokens are 256-bit random
values, so a slow hash adds nothing there, while passwords get argon2.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, Signer
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

SESSION_COOKIE = "trackside_session"
DEVICE_COOKIE = "trackside_device"
WS_UNAUTHENTICATED = 4401
WS_FORBIDDEN = 4403
WS_UNSUPPORTED_DATA = 1003
WS_POLICY_VIOLATION = 1008
WS_INTERNAL_ERROR = 1011
log = logging.getLogger("trackside.auth")
_closing: set[asyncio.Task[None]] = set()
_hasher = PasswordHasher()


class Role(StrEnum):
    ORGANIZER = "organizer"
    RACER = "racer"
    VIEWER = "viewer"
    CAR = "car"


@dataclass(frozen=True)
class Principal:
    role: Role
    user_id: int | None = None
    car_id: int | None = None
    token_id: int | None = None
    session_id: int | None = None
    email: str | None = None
    alias: str | None = None
    # A server viewer token watches the races of the organizer who made it, and no one else's.
    organizer_id: int | None = None

    def public(self) -> dict[str, Any]:
        return {
            "role": self.role.value,
            "user_id": self.user_id,
            "car_id": self.car_id,
            "email": self.email,
            "alias": self.alias,
        }


class AuthError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


# argon2 costs 64 MiB and tens of ms of CPU per call: a few threads of their own bound both, however
# many sign-ups and logins arrive together, and leave the default executor (and /healthz) alone.
PASSWORD_THREADS = 2
_password_pool = ThreadPoolExecutor(max_workers=PASSWORD_THREADS, thread_name_prefix="argon2")


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_password_pool, _hasher.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.get_running_loop().run_in_executor(_password_pool, check)


def validate_password(password: str) -> None:
    if not 10 <= len(password) <= 256:
        raise ValueError("password must be 10 to 256 characters long")


def session_signer(secret_key: str) -> Signer:
    return Signer(secret_key, salt="trackside.session")


def device_signer(secret_key: str) -> Signer:
    return Signer(secret_key, salt="trackside.device")


def new_device(user_id: int, signer: Signer) -> tuple[str, str]:
    """(device id, signed cookie value) for a browser that just signed in as ``user_id``."""
    device = f"{user_id}.{secrets.token_urlsafe(16)}"
    return device, signer.sign(device).decode()


def known_device(conn: HTTPConnection, signer: Signer, user_id: int) -> str | None:
    """The device id if this browser signed in as ``user_id`` before (its signed device cookie)."""
    cookie = conn.cookies.get(DEVICE_COOKIE)
    if not cookie:
        return None
    try:
        device = signer.unsign(cookie).decode()
    except BadSignature:
        return None
    return device if device.split(".", 1)[0] == str(user_id) else None


def bearer_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if conn.scope["type"] == "websocket":
        return conn.query_params.get("token") or None
    return None


def session_token(conn: HTTPConnection, signer: Signer) -> str | None:
    cookie = conn.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        return signer.unsign(cookie).decode()
    except BadSignature:
        return None


PrincipalResolver = Callable[[HTTPConnection], Awaitable[Principal | None]]


async def authorise(conn: HTTPConnection, roles: tuple[Role, ...]) -> Principal:
    """The one dependency: resolve the caller (via the app's resolver) and check the role."""
    resolver: PrincipalResolver = conn.app.state.resolve_principal
    principal = await resolver(conn)
    if principal is None:
        raise AuthError(401, "unauthenticated", "sign in or present a valid API token")
    if principal.session_id is not None and conn.scope["type"] == "websocket" and not same_origin(conn):
        # Browsers send the cookie on a cross-site websocket too, and websockets have no CORS: any
        # page a signed-in organizer visits could otherwise drive the race as them.
        raise AuthError(403, "cross_origin", "a websocket signed in by cookie must come from this server's pages")
    if roles and principal.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise AuthError(403, "forbidden", f"role {principal.role.value} may not do this (allowed: {allowed})")
    conn.scope["principal"] = principal
    return principal


def same_origin(conn: HTTPConnection) -> bool:
    """No Origin (not a browser) or one naming this server's own host and port."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == conn.headers.get("host", "").lower()


async def _close_quietly(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state is WebSocketState.DISCONNECTED:
        return
    try:
        await websocket.close(code=code, reason=reason[:120])
    except Exception as error:  # already closing from the other side
        log.debug("websocket close: %s", error)


def principal_of(conn: HTTPConnection) -> Principal:
    principal = conn.scope.get("principal")
    if not isinstance(principal, Principal):
        raise RuntimeError("route reached without authorise(): wrap it with requires()")
    return principal


HttpEndpoint = Callable[[Request], Awaitable[Response]]
WsEndpoint = Callable[[WebSocket], Awaitable[None]]


def requires(*roles: Role) -> Callable[[HttpEndpoint], HttpEndpoint]:
    """HTTP endpoint guard; no roles = any authenticated caller."""

    def wrap(endpoint: HttpEndpoint) -> HttpEndpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            try:
                await authorise(request, roles)
            except AuthError as error:
                return JSONResponse({"error": error.message, "code": error.code}, status_code=error.status)
            return await endpoint(request)

        return guarded

    return wrap


def ws_requires(*roles: Role) -> Callable[[WsEndpoint], WsEndpoint]:
    """Websocket guard. The socket is accepted before closing so the client sees the reason
    (a close before accept reaches the client as a bare HTTP 403)."""

    def wrap(endpoint: WsEndpoint) -> WsEndpoint:
        @functools.wraps(endpoint)
        async def guarded(websocket: WebSocket) -> None:
            from race_server.api.socket_watch import socket_watch

            try:
                principal = await authorise(websocket, roles)
            except AuthError as error:
                await websocket.accept()
                code = WS_UNAUTHENTICATED if error.status == 401 else WS_FORBIDDEN
                await websocket.close(code=code, reason=error.message[:120])
                return

            def close(code: int, reason: str) -> None:
                task = asyncio.create_task(_close_quietly(websocket, code, reason))
                _closing.add(task)
                task.add_done_callback(_closing.discard)

            with socket_watch(websocket.app.state).watching(principal, close):
                try:
                    await endpoint(websocket)
                except WebSocketDisconnect:
                    pass  # the client left: nothing to close
                except Exception:
                    # A frame the endpoint cannot handle must end in a close code, not a dropped TCP
                    # connection the client cannot tell from a network failure.
                    log.exception("websocket %s failed", websocket.url.path)
                    await _close_quietly(websocket, WS_INTERNAL_ERROR, "internal error")

        return guarded

    return wrap


def make_resolver(pool: Any, signer: Signer) -> PrincipalResolver:
    """Bearer token first (explicit beats ambient), then the session cookie."""
    from race_server.db import sessions, tokens

    async def resolve(conn: HTTPConnection) -> Principal | None:
        token = bearer_token(conn)
        if token is not None:
            row = await tokens.lookup(pool, digest(token))
            if row is None:
                return None
            kind = row["kind"]
            role = Role(row["user_role"]) if kind == "user" else Role.CAR if kind == "car" else Role.VIEWER
            return Principal(
                role=role,
                user_id=row["user_id"],
                car_id=row["car_id"],
                token_id=row["token_id"],
                email=row["email"],
                alias=row["alias"],
                organizer_id=row["created_by"] if role is Role.VIEWER else None,
            )
        secret = session_token(conn, signer)
        if secret is None:
            return None
        session = await sessions.lookup(pool, digest(secret))
        if session is None:
            return None
        return Principal(
            role=Role(session["role"]),
            user_id=session["user_id"],
            session_id=session["session_id"],
            email=session["email"],
            alias=session["alias"],
        )

    return resolve
