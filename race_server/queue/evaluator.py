"""Classic-race evaluation: each submission is driven on the race's track with the race's rules
(SPEC "Classic-race evaluation": continuous laps with the race's penalties and resets until N
consecutive laps are completed, or 20 simulated minutes pass).

The drive itself is ``evaluate_run`` in a separate, niced process (the same ``LiveSession`` that
runs LIVE races, stepped as fast as possible), so the server's event loop never carries the
simulation. Submissions wait in PostgreSQL (status queued → evaluating → evaluated | failed): a
restart picks up the ones that were waiting or interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from race_server.bus import EventBus
from race_server.db import races
from race_server.lifeline import bind_to_parent
from race_server.models.store import ModelStore
from race_server.queue import service
from race_server.races import folders
from race_server.races.ranking import Lap, best_window

if TYPE_CHECKING:
    from race_server.stream.service import VideoService

log = logging.getLogger("trackside.evaluator")

MAX_EVALUATION_S = 20 * 60.0
_NICENESS = 10


@dataclass
class EvaluationOutcome:
    laps: list[dict[str, Any]] = field(default_factory=list)
    telemetry: list[dict[str, Any]] = field(default_factory=list)
    reason: str = "time_up"
    message: str = ""


def evaluate_run(spec: Any, min_laps: int, max_s: float = MAX_EVALUATION_S) -> EvaluationOutcome:
    """Drive one evaluation run to N consecutive valid laps (or ``max_s`` of sim time)."""
    from dataclasses import replace

    from race_server.live.session import LiveSession

    session = LiveSession(spec.race_id, spec.route_id, spec.reverse)
    outcome = EvaluationOutcome()
    run_spec = replace(spec, countdown_s=0.0, slot_s=max_s)
    pending = session.launch(run_spec)
    while True:
        for event in pending:
            kind = event["type"]
            if kind == "lap":
                outcome.laps.append(event)
            elif kind == "telemetry":
                outcome.telemetry.append(event)  # with ``host``: the commands and the reward params
            elif kind == "run_end":
                outcome.reason = str(event["reason"])
                outcome.message = str(event.get("message", ""))
                return outcome
        laps = [
            Lap(spec.racer_id, spec.run_id, e["lap"], e["time_ms"], e["valid"], float(e["order"])) for e in outcome.laps
        ]
        if laps and best_window(laps, "best_lap", min_laps) is not None:
            outcome.reason = "completed"
            return outcome
        if not session.running:
            return outcome
        pending = session.tick()


def _worker_init(server_pid: int) -> None:
    bind_to_parent(server_pid)
    with contextlib.suppress(OSError):
        os.nice(_NICENESS)


class Evaluator:
    """Runs queued classic submissions one at a time (see the module docstring)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        bus: EventBus,
        data_dir: Path,
        *,
        max_s: float = MAX_EVALUATION_S,
        models: ModelStore | None = None,
        video: VideoService | None = None,
    ) -> None:
        self.video = video  # records each evaluation's video when set (and video is on)
        self.pool = pool
        self.bus = bus
        self.data_dir = data_dir
        self.models = models or service.default_model_store(pool, data_dir)
        self.max_s = max_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._executor: ProcessPoolExecutor | None = None
        self.idle = asyncio.Event()

    async def start(self) -> None:
        self._executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
            initargs=(os.getpid(),),
        )
        self._task = asyncio.create_task(self._loop(), name="classic-evaluator")
        self._wake.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self.idle.clear()
            pending = await races.pending_evaluations(self.pool)
            for sub in pending:
                try:
                    await self.evaluate(sub)
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    log.exception("evaluation of submission %s failed", sub.id)
                    await races.set_submission_status(self.pool, sub.id, "failed", error=f"evaluation failed: {error}")
            if not self._wake.is_set():
                self.idle.set()

    async def evaluate(self, sub: races.SubmissionRow) -> None:
        from race_server.live.spec import RunSpec

        race = await races.get(self.pool, sub.race_id)
        if race is None:
            return
        config = race.config
        async with self.pool.acquire() as conn:
            run_id = await races.reserve_run_id(conn)
            async with conn.transaction():
                await races.set_submission_status(conn, sub.id, "evaluating")
                await races.insert_run(
                    conn, run_id=run_id, race_id=race.id, racer_id=sub.racer_id, submission_id=sub.id,
                    kind="evaluation", status="running",
                )  # fmt: skip
        model = await service.race_files(self.models, sub)
        spec = RunSpec(
            race_id=race.id,
            run_id=run_id,
            racer_id=sub.racer_id,
            route_id=config.route_id,
            reverse=config.reverse,
            objects=service.objects_of(config),
            driver=service.driver_spec(sub, model),
            slot_s=self.max_s,
            countdown_s=0.0,
            off_track_penalty_s=config.off_track_penalty_s,
            collision_penalty_s=config.collision_penalty_s,
            resets=config.resets,
            seed=run_id,
        )
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        outcome = await loop.run_in_executor(
            self._executor, evaluate_run, spec, config.min_consecutive_laps, self.max_s
        )
        failed = outcome.reason == "run_failed"
        valid = [lap for lap in outcome.laps if lap["valid"]]
        result = {
            "reason": outcome.reason,
            "message": outcome.message,
            "laps": len(valid),
            "best_lap_ms": min((lap["time_ms"] for lap in valid), default=None),
            "run_id": run_id,
        }

        async def record(conn: asyncpg.Connection) -> list[dict[str, Any]]:
            for lap in outcome.laps:
                await races.insert_lap(conn, race.id, lap)
            await races.set_run_status(conn, run_id, "failed" if failed else "completed", outcome.reason)
            await races.set_submission_status(
                conn, sub.id, "failed" if failed else "evaluated", result, outcome.message if failed else None
            )
            rows = await service.leaderboard(conn, race.id, config)
            return [service.leaderboard_event(rows)]

        laps = [shaped for lap in outcome.laps if (shaped := service.shape({**lap, "race_id": race.id}))]
        await service.store(self.pool, self.bus, race.id, laps, record)
        if outcome.telemetry:
            from race_server.queue.run_rewards import write_scored_run_logs

            folder = folders.run_dir(self.data_dir, race.id, run_id)
            route = (config.route_id, config.reverse)
            await asyncio.to_thread(write_scored_run_logs, folder, outcome.telemetry, route, spec.driver)
            await self._record_video(race.id, run_id, sub.racer_id, spec, outcome)

    async def _record_video(
        self, race_id: int, run_id: int, racer_id: int, spec: Any, outcome: EvaluationOutcome
    ) -> None:
        """The evaluation's video, drawn in the (niced) worker after the result is stored."""
        video = self.video
        if video is None or not video.settings.enabled:
            return
        from race_server.stream.offline import record_evaluation

        s = video.settings
        names = await races.names(self.pool, race_id)
        record = functools.partial(
            record_evaluation, outcome.telemetry, outcome.laps, spec.route_id, spec.reverse,
            str(video.recording_path(race_id, run_id)), racer_name=names.get(racer_id, ""), codec=s.codec,
            width=s.width, height=s.height, fps=s.fps, bitrate=s.bitrate, view=s.view,
        )  # fmt: skip
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, record)
        except Exception:
            log.exception("race %s run %s: the evaluation's video was not recorded", race_id, run_id)
