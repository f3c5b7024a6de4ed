"""Operations endpoints: health and Prometheus metrics (no auth: scraped by local tooling)."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from race_server import __version__


async def _database_status(request: Request) -> dict[str, Any]:
    try:
        async with asyncio.timeout(2):
            await request.app.state.pool.fetchval("SELECT 1")
    except (OSError, TimeoutError, Exception) as error:
        return {"ok": False, "error": f"{type(error).__name__}: {error}"}
    return {"ok": True, "embedded": request.app.state.settings.embedded_database}


async def healthz(request: Request) -> Response:
    database = await _database_status(request)
    bus = await request.app.state.bus.status()
    ok = bool(database["ok"] and bus.get("ok"))
    body = {"status": "ok" if ok else "degraded", "version": __version__, "database": database, "bus": bus}
    return JSONResponse(body, status_code=200 if ok else 503)


async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


routes: list[BaseRoute] = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
