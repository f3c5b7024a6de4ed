"""Each LIVE run's telemetry, kept while the run is on and written as DeepRacer logs when it ends."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from race_server.live.spec import DriverSpec
from race_server.queue.run_logs import Route
from race_server.queue.run_rewards import write_scored_run_logs
from race_server.races import folders

# A run's rows in memory: 15 per second, so this bounds a runaway slot (about 3.7 hours).
MAX_ROWS_PER_RUN = 200_000


class RunRecorder:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._rows: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self._routes: dict[tuple[int, int], Route] = {}  # the track each run drives (closest_waypoint, track_len)
        self._drivers: dict[tuple[int, int], DriverSpec] = {}  # whose reward function scores the run

    def run_dir(self, race_id: int, run_id: int) -> Path:
        return folders.run_dir(self.data_dir, race_id, run_id)

    def begin(self, race_id: int, run_id: int, route: Route | None = None, driver: DriverSpec | None = None) -> None:
        """``driver``: the run's DriverSpec; a model's reward function scores the run's steps at the end."""
        self._rows[(race_id, run_id)] = []
        if route is not None:
            self._routes[(race_id, run_id)] = route
        if driver is not None:
            self._drivers[(race_id, run_id)] = driver

    def record(self, race_id: int, run_id: int, telemetry: dict[str, Any]) -> None:
        rows = self._rows.get((race_id, run_id))
        if rows is not None and len(rows) < MAX_ROWS_PER_RUN:
            rows.append(telemetry)

    def rows(self, race_id: int, run_id: int) -> list[dict[str, Any]]:
        return list(self._rows.get((race_id, run_id), ()))

    def finish(self, race_id: int, run_id: int) -> asyncio.Future[None] | None:
        """Score and write the run's logs (in a thread: a long run's CSV is megabytes, and the reward
        function runs in its sandbox there); None if nothing was recorded."""
        rows = self._rows.pop((race_id, run_id), None)
        route = self._routes.pop((race_id, run_id), None)
        driver = self._drivers.pop((race_id, run_id), None)
        if not rows:
            return None
        folder = self.run_dir(race_id, run_id)
        return asyncio.ensure_future(asyncio.to_thread(write_scored_run_logs, folder, rows, route, driver))

    def forget(self, race_id: int) -> None:
        for key in [key for key in self._rows if key[0] == race_id]:
            del self._rows[key]
            self._routes.pop(key, None)
            self._drivers.pop(key, None)
