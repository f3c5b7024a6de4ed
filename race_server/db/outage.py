"""What a lost or restarting database looks like through asyncpg: an error worth retrying later."""

from __future__ import annotations

import asyncpg

OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, and TimeoutError (a pool that cannot connect)
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # "connection is closed" on a connection the server dropped
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, crash shutdown, cannot connect now
)


def is_outage(error: BaseException) -> bool:
    return isinstance(error, OUTAGE_ERRORS)
