"""Open websockets closed as soon as the credential they were opened with stops being good.

A socket authenticates once, at the handshake; without this a revoked token, a logged-out session,
a deleted user or a changed role would keep working for as long as the socket stays open. Two paths:

- ``revoke``: the endpoint that revokes (token revocation, logout) closes this process's sockets at
  once, before it answers, so a command sent after the answer finds its socket closed;
- the sweep: while any socket is open, one query every ``SWEEP_INTERVAL_S`` checks every open
  socket's token or session (and role). It catches what happens elsewhere: another server process,
  the CLI, an operator editing the database. Two small queries a sweep, however many sockets.

Sockets opened with a race's own viewer link are governed by the race (``race_ws.Feed._revoke``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from race_server.auth import WS_UNAUTHENTICATED, Principal, Role
from race_server.db import credentials

log = logging.getLogger("trackside.socket_watch")

SWEEP_INTERVAL_S = 0.4
SWEEP_QUERY_TIMEOUT_S = 2.0
REVOKED_REASON = "your sign-in was revoked or changed; sign in again"
CloseSocket = Callable[[int, str], None]


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    close: CloseSocket


class SocketWatch:
    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self._entries: dict[int, _Entry] = {}
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def watching(self, principal: Principal, close: CloseSocket) -> Iterator[None]:
        """Watch this socket's credential for as long as the block runs."""
        if principal.token_id is None and principal.session_id is None:
            yield
            return
        key = next(self._ids)
        self._entries[key] = _Entry(principal, close)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._sweep_while_open(), name="socket-watch")
        try:
            yield
        finally:
            self._entries.pop(key, None)

    def revoke(self, *, token_id: int | None = None, session_id: int | None = None) -> int:
        """Close this process's sockets opened with that token or session; returns how many."""
        closed = 0
        for key, entry in list(self._entries.items()):
            p = entry.principal
            if (token_id is not None and p.token_id == token_id) or (
                session_id is not None and p.session_id == session_id
            ):
                self._close(key, entry)
                closed += 1
        return closed

    async def still_valid(self, principal: Principal) -> bool:
        """One socket's credential, checked now (before a privileged command runs)."""
        if principal.token_id is None and principal.session_id is None:
            return True
        tokens, sessions = await credentials.live_roles(
            self.pool,
            [principal.token_id] if principal.token_id is not None else [],
            [principal.session_id] if principal.session_id is not None else [],
        )
        return _valid(principal, tokens, sessions)

    async def close(self) -> None:
        """Stop the sweep (server shutdown, before the pool closes)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _close(self, key: int, entry: _Entry) -> None:
        self._entries.pop(key, None)
        try:
            entry.close(WS_UNAUTHENTICATED, REVOKED_REASON)
        except Exception:
            log.exception("closing a revoked socket failed")

    async def _sweep_while_open(self) -> None:
        while self._entries:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            try:
                await asyncio.wait_for(self._sweep(), SWEEP_QUERY_TIMEOUT_S)
            except Exception as error:  # a database outage must not close every socket
                log.warning("socket credential sweep failed: %s", error)

    async def _sweep(self) -> None:
        entries = list(self._entries.items())
        if not entries:
            return
        token_ids = sorted({e.principal.token_id for _, e in entries if e.principal.token_id is not None})
        session_ids = sorted({e.principal.session_id for _, e in entries if e.principal.session_id is not None})
        tokens, sessions = await credentials.live_roles(self.pool, token_ids, session_ids)
        for key, entry in entries:
            if key in self._entries and not _valid(entry.principal, tokens, sessions):
                self._close(key, entry)


def _valid(principal: Principal, tokens: dict[int, str], sessions: dict[int, str]) -> bool:
    if principal.token_id is not None:
        role = tokens.get(principal.token_id)
    else:
        assert principal.session_id is not None
        role = sessions.get(principal.session_id)
    return role is not None and Role(role) is principal.role


async def close_socket_watch(app_state: Any) -> None:
    watch = getattr(app_state, "socket_watch", None)
    if watch is not None:
        await watch.close()


def socket_watch(app_state: Any) -> SocketWatch:
    """The process's one watch, made on first use (it needs the pool the lifespan opened)."""
    watch = getattr(app_state, "socket_watch", None)
    if watch is None:
        watch = SocketWatch(app_state.pool)
        app_state.socket_watch = watch
    return watch
