"""A job's live feed for the workshop pages: ``/ws/jobs/{job_id}``.

On connect the socket sends ``{"type": "history", "job": ..., "events": [...]}`` (every event the job
logged so far), then each new ``job.status`` / ``job.progress`` event as the bus delivers it. The
subscription starts before the history is read and events are passed on only when newer than the
last one sent, so nothing falls between the two and nothing arrives twice. After a bus outage the
events missed are read back from the job's event log. Owner only, like ``/api/jobs`` (docs/security.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from race_server.auth import WS_FORBIDDEN, Role, principal_of, ws_requires
from race_server.bus import BusGap, SubscriberDropped
from race_server.db import jobs

log = logging.getLogger("trackside.api.job_feed")
# The client reconnects on this close code (a bus subscriber that fell behind).
WS_TRY_AGAIN = 1013


class _Sender:
    def __init__(self, websocket: WebSocket, job_id: int) -> None:
        self.websocket = websocket
        self.job_id = job_id
        self.last_id = 0

    async def catch_up(self, pool: Any) -> None:
        for event in await jobs.events(pool, self.job_id, after_id=self.last_id):
            await self.send(event.as_event())

    async def send(self, event: dict[str, Any]) -> None:
        event_id = int(event.get("id", 0))
        if event_id <= self.last_id:
            return
        self.last_id = event_id
        await self.websocket.send_json(event)


async def _until_client_leaves(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass  # the feed takes no commands


@ws_requires(Role.ORGANIZER, Role.RACER)
async def job_socket(websocket: WebSocket) -> None:
    job_id = int(websocket.path_params["job_id"])
    pool = websocket.app.state.pool
    await websocket.accept()
    job = await jobs.get(pool, job_id)
    if job is None or job.owner_id != principal_of(websocket).user_id:
        await websocket.close(code=WS_FORBIDDEN, reason=f"job {job_id} does not exist")
        return
    sender = _Sender(websocket, job_id)
    leaving = asyncio.create_task(_until_client_leaves(websocket))
    try:
        async with websocket.app.state.bus.subscribe(f"job:{job_id}", max_queue=4096) as sub:
            history = await jobs.events(pool, job_id)
            await websocket.send_json(
                {"type": "history", "job": job.as_json(), "events": [e.as_event() for e in history]}
            )
            sender.last_id = history[-1].id if history else 0
            feed = asyncio.create_task(_forward(sub, sender, pool))
            done, _ = await asyncio.wait({feed, leaving}, return_when=asyncio.FIRST_COMPLETED)
            if feed not in done:
                feed.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await feed
            elif isinstance(feed.exception(), SubscriberDropped):
                await websocket.close(code=WS_TRY_AGAIN, reason="the feed fell behind; reconnect")
            else:
                feed.result()  # the bus closed (server stopping) or a real failure, raised here
    finally:
        leaving.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await leaving


async def _forward(sub: Any, sender: _Sender, pool: Any) -> None:
    async for item in sub:
        if isinstance(item, BusGap):
            if item.resumed:
                await sender.catch_up(pool)
            continue
        await sender.send(item)


routes: list[BaseRoute] = [WebSocketRoute("/ws/jobs/{job_id:int}", job_socket)]
