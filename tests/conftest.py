"""Shared fixtures: real PostgreSQL (a schema per test), real Redis (a namespace per test) and a
real uvicorn server on a free loopback port. With CI set, a missing service fails the run."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
import uvicorn

from race_server.app import create_app
from race_server.settings import Settings
from race_server.stream.settings import VideoSettings

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = bool(os.environ.get("CI"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def artifact_path(name: str) -> Path:
    """Where a test leaves a picture for a person to review. The folder is ignored by git, so a clean
    clone lacks it until the first test writes there, whichever test runs first."""
    path = ARTIFACTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def service_missing(what: str, error: BaseException) -> None:
    message = f"{what} is not reachable ({type(error).__name__}: {error})"
    if IN_CI:
        pytest.fail(f"{message}; CI requires it", pytrace=False)
    pytest.skip(f"{message}; set CI=1 to make this a failure")


@pytest.fixture(autouse=True)
def _fail_on_stray_task_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """An exception in a background task that nobody awaited must fail the test that caused it."""
    errors: list[dict[str, Any]] = []
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None:
        yield
        return
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield
    loop.set_exception_handler(previous)
    if errors:
        pytest.fail(f"unhandled errors in background tasks: {errors}")


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A DSN whose connections see only a fresh schema of their own."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        admin = await asyncpg.connect(TEST_DATABASE_URL, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        service_missing(f"PostgreSQL at {TEST_DATABASE_URL}", error)
        raise
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in TEST_DATABASE_URL else "?"
    try:
        yield f"{TEST_DATABASE_URL}{separator}search_path={schema}"
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


@pytest.fixture
async def redis_url() -> str:
    client = aioredis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError) as error:
        service_missing(f"Redis at {TEST_REDIS_URL}", error)
    finally:
        await client.aclose()
    return TEST_REDIS_URL


@pytest.fixture
def settings(tmp_path: Path, pg_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=pg_url,
        secret_key="test-secret-" + "x" * 40,
        login_max_failures=3,
        login_window_s=60,
        video=VideoSettings(enabled=False),  # video tests switch it on; elsewhere it would only cost CPU
    )


class LiveServer:
    def __init__(self, settings: Settings, bus_prefix: str) -> None:
        self.app = create_app(settings, bus_prefix=bus_prefix)
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=0, log_config=None, ws="websockets-sansio", lifespan="on")
        )
        self.task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        sockets = self.server.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()
                raise RuntimeError("server exited before it started")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task


@pytest.fixture
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    server = LiveServer(settings, bus_prefix=f"test-{uuid.uuid4().hex[:8]}:")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def with_redis(settings: Settings, redis_url: str) -> Settings:
    return replace(settings, redis_url=redis_url)
