"""``/ws/car``: the car link (``race_server.protocol``'s car section), and the car-bundle download.

A car connects with its car token, sends ``car_hello`` within 10 s (else close 4002) and gets
``welcome``. Then the server sends heartbeats at 10 Hz and the car does too; a car silent for
``CAR_SILENT_S`` is closed (4008) and shows offline; it stops by itself after 300 ms anyway
(its dead-man). Frames that do not parse get ``error`` with the race websocket's codes. The car's
``last_seen_at`` is written when it links, every ``SEEN_EVERY_S`` while linked, and when it goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from race_server import protocol as p
from race_server.api.errors import ApiError
from race_server.auth import Role, principal_of, requires, ws_requires
from race_server.db import fleet
from race_server.fleet.links import CarLink, CarLinks
from race_server.fleet.video import MAX_OFFER_BYTES, CarVideo

log = logging.getLogger("trackside.fleet")
HELLO_TIMEOUT_S = 10.0
CAR_SILENT_S = 1.0
SEEN_EVERY_S = 5.0
WS_NO_HELLO = 4002
WS_SILENT = 4008


def car_links(state: object) -> CarLinks:
    links = getattr(state, "car_links", None)
    if links is None:
        links = CarLinks()
        state.car_links = links  # type: ignore[attr-defined]
    return links


def car_video(state: object) -> CarVideo:
    video = getattr(state, "car_video", None)
    if video is None:
        video = CarVideo()
        state.car_video = video  # type: ignore[attr-defined]
    return video


def _raw(message: MutableMapping[str, Any]) -> str | bytes:
    text = message.get("text")
    if isinstance(text, str):
        return text
    data = message.get("bytes")
    return data if isinstance(data, bytes) else b""


@ws_requires(Role.CAR)
async def ws_car(websocket: WebSocket) -> None:
    await websocket.accept()
    car_id = principal_of(websocket).car_id
    assert car_id is not None
    pool = websocket.app.state.pool
    links = car_links(websocket.app.state)
    car = await fleet.get(pool, car_id)
    if car is None:
        await websocket.close(code=4004, reason="this car no longer exists")
        return
    try:
        first = await asyncio.wait_for(websocket.receive(), HELLO_TIMEOUT_S)
        hello = p.parse_car_message(_raw(first)) if first["type"] == "websocket.receive" else None
    except TimeoutError:
        hello = None
    except p.ProtocolError as error:
        await websocket.send_text(p.encode_car_frame(p.CarError(req=error.req, code=error.code, message=error.message)))
        hello = None
    if not isinstance(hello, p.CarHello):
        await websocket.close(code=WS_NO_HELLO, reason="the first message must be car_hello")
        return

    async def close(code: int, reason: str) -> None:
        await websocket.close(code=code, reason=reason[:120])

    link = CarLink(car_id, car.name, hello, websocket.send_text, close)
    await links.attach(link)
    await fleet.seen(pool, car_id, hello.hardware, hello.software)
    log.info("car %s (%s) linked: %s", car_id, car.name, hello.hardware)
    await link.send(p.encode_car_frame(p.Welcome(req=hello.req, car_id=car_id, name=car.name)))
    beats = asyncio.create_task(_heartbeats(link, pool), name=f"car-{car_id}-heartbeats")
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            try:
                msg = p.parse_car_message(_raw(message))
            except p.ProtocolError as error:
                await link.send(p.encode_car_frame(p.CarError(req=error.req, code=error.code, message=error.message)))
                continue
            if isinstance(msg, p.CarHeartbeat):
                link.on_heartbeat(msg)
            elif isinstance(msg, p.CarTelemetry):
                link.telemetry = msg
                links.changes.notify()
            elif isinstance(msg, p.CarOk | p.CarError):
                link.on_reply(msg)
            else:
                await link.send(p.encode_car_frame(p.CarError(code="unexpected", message="already registered")))
    except WebSocketDisconnect:
        pass
    finally:
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await beats
        links.detach(link)
        if links.get(car_id) is None:
            await car_video(websocket.app.state).drop(car_id)
        with contextlib.suppress(Exception):
            await fleet.seen(pool, car_id)
        log.info("car %s (%s) unlinked", car_id, car.name)


async def _heartbeats(link: CarLink, pool: fleet.Conn) -> None:
    seq = 0
    seen_at = time.monotonic()
    period = 1.0 / p.HEARTBEAT_HZ
    while not link.closed:
        await link.send(p.encode_car_frame(link.heartbeat(seq)))
        seq += 1
        now = time.monotonic()
        if now - link.last_heartbeat > CAR_SILENT_S:
            await link.close(WS_SILENT, f"no heartbeat from the car for {CAR_SILENT_S:g} s")
            return
        if now - seen_at > SEEN_EVERY_S:
            seen_at = now
            await fleet.seen(pool, link.car_id)
        await asyncio.sleep(period)


@requires(Role.CAR)
async def car_bundle(request: Request) -> Response:
    """A car bundle this car was told to load (``load_model``); no other file is served to cars."""
    car_id = principal_of(request).car_id
    assert car_id is not None
    sha256 = request.path_params["sha256"]
    path = car_links(request.app.state).bundle_for(car_id, sha256)
    if path is None or not path.exists():
        raise ApiError(404, "not_found", f"no bundle {sha256} was offered to this car")
    return FileResponse(path, media_type="application/gzip", filename=f"{sha256[:12]}-car.tar.gz")


@requires(Role.CAR)
async def car_video_offer(request: Request) -> Response:
    """WHIP-style: the car's SDP offer for its camera; the answer (201, application/sdp)."""
    car_id = principal_of(request).car_id
    assert car_id is not None
    if car_links(request.app.state).get(car_id) is None:
        raise ApiError(409, "not_linked", "link the car (/ws/car) before publishing its camera")
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/sdp":
        raise ApiError(415, "unsupported_media_type", "send the SDP offer as application/sdp")
    body = await request.body()
    if len(body) > MAX_OFFER_BYTES:
        raise ApiError(413, "too_large", f"an SDP offer is at most {MAX_OFFER_BYTES} bytes")
    try:
        answer = await car_video(request.app.state).ingest(car_id, body.decode())
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, "bad_offer", f"the SDP offer cannot be answered: {error}") from None
    return Response(answer, status_code=201, media_type="application/sdp")


routes: list[BaseRoute] = [
    Route("/api/car/video", car_video_offer, methods=["POST"]),
    WebSocketRoute("/ws/car", ws_car),
    Route("/api/car/bundles/{sha256:str}", car_bundle, methods=["GET"]),
]
