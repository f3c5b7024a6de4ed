"""Each LIVE run's telemetry, kept while the run is on and written as DeepRacer logs when it ends."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from race_server.live.spec import DriverSpec
from race_server.queue.run_logs import Route, write_run_logs
from race_server.queue.run_rewards import NO_REWARD_FILE, REFERENCE_DRIVER, score_rows

log = logging.getLogger(__name__)

# A run's rows in memory: 15 per second, so this bounds a runaway slot (about 3.7 hours).
MAX_ROWS_PER_RUN = 200_000


class RunRecorder:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._rows: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self._routes: dict[tuple[int, int], Route] = {}  # the track each run drives (closest_waypoint, track_len)
        self._rewards: dict[tuple[int, int], tuple[str | None, str]] = {}  # (reward source, note without one)

    def run_dir(self, race_id: int, run_id: int) -> Path:
        return self.data_dir / "races" / str(race_id) / "runs" / str(run_id)

    def begin(self, race_id: int, run_id: int, route: Route | None = None, driver: DriverSpec | None = None) -> None:
        """``driver``: the run's DriverSpec; a model's reward function scores the run's steps at the end."""
        self._rows[(race_id, run_id)] = []
        if route is not None:
            self._routes[(race_id, run_id)] = route
        if driver is not None:
            without = REFERENCE_DRIVER if driver.kind == "reference" else NO_REWARD_FILE
            self._rewards[(race_id, run_id)] = (driver.reward_function, without)

    def record(self, race_id: int, run_id: int, telemetry: dict[str, Any]) -> None:
        rows = self._rows.get((race_id, run_id))
        if rows is not None and len(rows) < MAX_ROWS_PER_RUN:
            rows.append(telemetry)

    def rows(self, race_id: int, run_id: int) -> list[dict[str, Any]]:
        return list(self._rows.get((race_id, run_id), ()))

    def finish(self, race_id: int, run_id: int) -> asyncio.Future[None] | None:
        """Write the run's logs (in a thread: a long run's CSV is megabytes); None if nothing was recorded."""
        rows = self._rows.pop((race_id, run_id), None)
        route = self._routes.pop((race_id, run_id), None)
        reward = self._rewards.pop((race_id, run_id), None)
        if not rows:
            return None
        folder = self.run_dir(race_id, run_id)
        return asyncio.ensure_future(asyncio.to_thread(_write, folder, rows, route, reward))

    def forget(self, race_id: int) -> None:
        for key in [key for key in self._rows if key[0] == race_id]:
            del self._rows[key]
            self._routes.pop(key, None)
            self._rewards.pop(key, None)


def _write(
    folder: Path, rows: list[dict[str, Any]], route: Route | None, reward: tuple[str | None, str] | None
) -> None:
    note = None
    if reward is not None:
        source, note = reward
        if source is not None and route is not None:
            try:
                note = score_rows(rows, source, route).note
            except Exception as error:  # the logs are still written, with reward 0
                log.exception("scoring a LIVE run's rewards failed")
                note = f"scoring failed ({type(error).__name__}: {error}); reward is 0"
    write_run_logs(folder, rows, route, note)
