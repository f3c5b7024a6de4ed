"""How many model uploads run at once, per user and in all, and how much each user may store.

An upload holds its body on disk in staging and then its unpacked folder (up to 1 GB each), so
parallel uploads multiply disk use: one per user and a few in all keep staging bounded, and a
per-user quota on stored models keeps one racer from filling the venue laptop's disk. The quota is
checked before an upload starts and caps how much of its body is accepted; since a compressed
archive unpacks larger, the last model may take its owner up to one folder (1 GB) past the quota.
Counts are per server process.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from race_server.api.errors import ApiError
from race_server.db import models as model_rows

UPLOADS_PER_USER = 1
UPLOADS_IN_ALL = 4
QUOTA_BYTES = 20 * 1024**3


class UploadGate:
    def __init__(
        self, per_user: int = UPLOADS_PER_USER, in_all: int = UPLOADS_IN_ALL, quota_bytes: int = QUOTA_BYTES
    ) -> None:
        self.per_user = per_user
        self.in_all = in_all
        self.quota_bytes = quota_bytes
        self._running: collections.Counter[int] = collections.Counter()

    @asynccontextmanager
    async def admit(self, pool: Any, user_id: int) -> AsyncIterator[int]:
        """Hold an upload slot for the block; yields how many bytes of quota are left (ApiError
        429 when the user or the server has too many uploads running, 413 when the quota is used)."""
        if self._running[user_id] >= self.per_user:
            raise ApiError(
                429,
                "upload_in_progress",
                f"you have {self._running[user_id]} upload(s) running; wait for it to finish",
                headers={"Retry-After": "10"},
            )
        if sum(self._running.values()) >= self.in_all:
            raise ApiError(429, "server_busy", "the server is receiving other uploads; try again shortly",
                           headers={"Retry-After": "10"})  # fmt: skip
        self._running[user_id] += 1
        try:
            left = self.quota_bytes - await model_rows.used_bytes(pool, user_id)
            if left <= 0:
                raise ApiError(
                    413,
                    "quota_exceeded",
                    f"your models use your whole quota of {self.quota_bytes} bytes; delete some to upload more",
                )
            yield left
        finally:
            self._running[user_id] -= 1
            if not self._running[user_id]:
                del self._running[user_id]


def upload_gate(app_state: Any) -> UploadGate:
    gate = getattr(app_state, "upload_gate", None)
    if gate is None:
        gate = UploadGate()
        app_state.upload_gate = gate
    assert isinstance(gate, UploadGate)
    return gate
