"""Where the database comes from: DATABASE_URL, or the embedded server in the data dir."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from race_server.db.embedded import EmbeddedPostgres, EmbeddedPostgresError
from race_server.settings import Settings

log = logging.getLogger("trackside.db")


@asynccontextmanager
async def database_dsn(settings: Settings, *, allow_attach: bool = False) -> AsyncIterator[str]:
    """Yield a DSN; an embedded server started here is stopped on exit (also on errors).

    With allow_attach (CLI commands), a server already running on the data dir is used as is."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    embedded = EmbeddedPostgres(settings.data_dir)
    try:
        dsn = await asyncio.to_thread(embedded.start)
    except EmbeddedPostgresError:
        attached = embedded.attach() if allow_attach else None
        if attached is None:
            raise
        log.info("using the embedded PostgreSQL of the running server")
        yield attached
        return
    try:
        yield dsn
    finally:
        await asyncio.to_thread(embedded.stop)
