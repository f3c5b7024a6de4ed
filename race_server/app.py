"""create_app(settings): routes and the lifespan that owns the database, pool and event bus."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from race_server import auth
from race_server.api import (
    car_ws,
    fleet,
    identity,
    jobs,
    ops,
    race_roster,
    race_ws,
    races,
    timekeeper,
    tracks,
    video,
    web,
    whep,
)
from race_server.api import job_feed as job_feed_api
from race_server.api import job_files as job_files_api
from race_server.api import models as models_api
from race_server.api import reward as reward_api
from race_server.api import track_outline as track_outline_api
from race_server.api.edge import EdgeGuard
from race_server.api.errors import ApiError, error_response, http_error, internal_error
from race_server.api.fleet_ws import routes as fleet_ws_routes
from race_server.api.middleware import RequestContext
from race_server.api.socket_watch import close_socket_watch
from race_server.bus import create_bus
from race_server.db.lifecycle import database_dsn
from race_server.db.migrate import MIGRATIONS_DIR, migrate
from race_server.db.pool import create_pool
from race_server.metrics import Metrics
from race_server.models.store import ModelStore
from race_server.settings import Settings
from race_server.stream.service import video_service

log = logging.getLogger("trackside.app")


def create_app(
    settings: Settings, *, bus_prefix: str = "trackside:", migrations_dir: Path = MIGRATIONS_DIR
) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            dsn = await stack.enter_async_context(database_dsn(settings))
            pool = await create_pool(dsn, settings)
            stack.push_async_callback(pool.close)
            if settings.run_migrations:
                async with pool.acquire() as conn:
                    applied = await migrate(conn, migrations_dir)
                if applied:
                    log.info("database migrated", extra={"applied": ",".join(applied)})
            bus = create_bus(settings.redis_url, prefix=bus_prefix)
            await bus.start()
            stack.push_async_callback(bus.close)
            app.state.pool = pool
            stack.push_async_callback(close_socket_watch, app.state)  # its sweep uses the pool
            app.state.bus = bus
            app.state.resolve_principal = auth.make_resolver(pool, app.state.signer)
            app.state.model_store = ModelStore(pool, settings.data_dir)
            # A crash mid-import leaves staging files and blobs behind: clear them before serving.
            await app.state.model_store.recover()
            # training/evaluation job workers (trainer.service); tests that want none pass run_workers=False
            app.state.job_supervisor = None
            if settings.run_workers and settings.workers > 0:
                from trainer.service import JobSupervisor

                supervisor = JobSupervisor(
                    pool, bus, settings.data_dir, slots=settings.workers, models=app.state.model_store
                )
                await supervisor.start()
                stack.push_async_callback(supervisor.close)
                app.state.job_supervisor = supervisor
            # live video: one encoder process per race with a simulator, WHEP viewers, recordings
            app.state.video = await stack.enter_async_context(video_service(settings.data_dir, settings.video))
            # races: LIVE queue service, classic evaluator, race websocket feeds (race_server.api.race_runtime)
            from race_server.api.race_runtime import start_races

            await start_races(app, stack, settings.data_dir)
            # Start-up objects live for the whole process: keep them out of full GCs (150-230 ms pauses).
            gc.freeze()
            log.info("trackside ready", extra={"embedded_db": settings.embedded_database, "bus": type(bus).__name__})
            yield
        log.info("trackside stopped")

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    app = Starlette(
        routes=[
            *ops.routes,
            *identity.routes,
            *models_api.routes,
            *jobs.routes,
            *job_files_api.routes,
            *job_feed_api.routes,
            *reward_api.routes,
            *track_outline_api.routes,
            *races.routes,
            *race_ws.routes,
            *whep.routes,
            *video.routes,
            *car_ws.routes,
            *fleet.routes,
            *fleet_ws_routes,
            *timekeeper.routes,
            *race_roster.routes,
            *tracks.routes,
            *web.routes,  # last: its page routes catch what the API does not
        ],
        lifespan=lifespan,
        exception_handlers={ApiError: api_error, HTTPException: http_error, Exception: internal_error},
    )
    app.state.settings = settings
    app.state.signer = auth.session_signer(settings.secret_key)
    app.state.device_signer = auth.device_signer(settings.secret_key)
    app.state.metrics = Metrics(app.state)
    app.user_middleware.insert(0, Middleware(RequestContext, metrics=app.state.metrics))
    app.user_middleware.append(Middleware(EdgeGuard))
    app.user_middleware.insert(1, Middleware(web.SecurityHeaders))
    return app
