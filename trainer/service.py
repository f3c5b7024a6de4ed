"""The job worker: an I/O shell that claims jobs from PostgreSQL and runs each in its own process.

A ``JobSupervisor`` lives in the server's lifespan. It claims queued jobs (``race_server.db.jobs``,
``FOR UPDATE SKIP LOCKED``), spawns one process per job (multiprocessing *spawn*: no inherited
event loop, sockets or locks), and turns what that process reports over a pipe into job state in
PostgreSQL and events on the bus (channels ``job:<id>`` and ``user:<owner>:jobs``).

Statuses: queued -> initializing (claimed, process starting) -> in_progress (trainer built, reward
sandbox up) -> completed | failed; a stop request moves a running job to ``stopping``. A stopped
training job ends after its current iteration, whose checkpoint is the final one, and is
``completed`` with ``stopped_early`` (DeepRacer keeps the model of a stopped job). A job stopped
while queued, or before its first iteration began, has no model and is ``canceled``. A completed
training job (stopped early or not) registers its folder in the model store (a copy, source
"training", named after the job) and records the model's id; an evaluation job evaluates either a
training job's folder or a stored model (``model_id``), written out for its process.

A process that dies without reporting (non-zero exit, killed) fails its job with the reason. A
server that dies leaves its jobs active in the database: the next supervisor on that host sees
the old server process is gone and fails them ("worker lost"); on other hosts a heartbeat older
than ``stale_after_s`` does the same. Job processes exit when their server dies (the pipe closes).
Training runs at ``os.nice(10)`` so LIVE races keep their clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing as mp
import multiprocessing.connection
import os
import shutil
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from race_server.bus import BusError, EventBus
from race_server.db import jobs
from race_server.db.jobs import JobEvent, JobRecord, WorkerIdentity
from race_server.lifeline import bind_to_parent

if TYPE_CHECKING:
    from race_server.models.store import ModelStore

log = logging.getLogger("trackside.jobs")

JOB_NICENESS = 10
EXIT_SERVER_GONE = 70
Message = tuple[Any, ...]


# ------------------------------------------------------------------------------------- job process
class _Stopped(Exception):
    """Raised inside an evaluation when a stop was requested."""


def _percent(episodes: int, elapsed_s: float, max_episodes: int | None, max_minutes: float | None) -> float:
    """How far the job is towards whichever stop condition comes first."""
    fractions = []
    if max_episodes:
        fractions.append(episodes / max_episodes)
    if max_minutes:
        fractions.append(elapsed_s / (max_minutes * 60.0))
    return round(min(100.0, 100.0 * max(fractions, default=0.0)), 2)


def _run_training(
    config: dict[str, Any], folder: Path, source: Path | None, send: Callable[[Message], None], stop: threading.Event
) -> None:
    from trainer.job_config import parse_training
    from trainer.sandbox import RewardError, RewardSandbox
    from trainer.train import IterationReport, Trainer, TrainJob, TrainOptions

    spec = parse_training(config)
    job = TrainJob(
        model_metadata=spec.model_metadata,
        hyperparameters=spec.hyperparameters,
        reward_source=spec.reward_function,
        world=spec.world,
        stop=spec.stop,
        clone_from=source,
        model_name=spec.name,
    )
    opts = TrainOptions(
        workers=spec.options.workers, envs_per_worker=spec.options.envs_per_worker, seed=spec.options.seed
    )
    # The reward sandbox enforces Stop and the time limit itself, even inside an endless reward call.
    limit_s = None if spec.stop.max_minutes is None else spec.stop.max_minutes * 60.0
    deadline = None if limit_s is None else time.monotonic() + limit_s
    latest: IterationReport | None = None
    with RewardSandbox(spec.reward_function, cancel=stop, deadline=deadline) as sandbox:
        trainer = Trainer(job, folder, sandbox, opts)
        send(("started",))
        if stop.is_set():
            send(("canceled", "stopped before training began: no model was saved"))
            return
        seen = trainer.episodes

        def on_iteration(report: IterationReport) -> bool:
            nonlocal seen, latest
            latest = report
            new = trainer.metrics[seen : report.episodes]
            seen = report.episodes
            send(
                (
                    "progress",
                    {
                        "iteration": report.iteration,
                        "episodes": report.episodes,
                        "env_steps": report.env_steps,
                        "elapsed_s": round(report.elapsed_s, 3),
                        "mean_reward": report.mean_reward,
                        "mean_progress": report.mean_progress,
                        "laps": report.laps,
                        "checkpoint": report.checkpoint,
                        "is_best": report.is_best,
                        "percent_complete": _percent(
                            report.episodes, report.elapsed_s, report.max_episodes, report.max_minutes
                        ),
                        "episode_rewards": [e["reward_score"] for e in new],
                        "episode_progress": [e["completion_percentage"] for e in new],
                        "episode_status": [e["episode_status"] for e in new],
                    },
                )
            )
            return not stop.is_set()

        try:
            last = trainer.run(on_iteration)
        except RewardError as exc:
            if exc.code not in ("STOPPED", "JOB_TIME_LIMIT"):
                raise
            last = latest  # the iteration cut short is dropped; the last checkpoint stands
    if last is None:
        send(("canceled", "no iteration ran: no model was saved"))
        return
    send(
        (
            "done",
            {
                "stopped_early": stop.is_set(),
                "result": {
                    "iterations": last.iteration,
                    "episodes": last.episodes,
                    "env_steps": last.env_steps,
                    "last_checkpoint": last.checkpoint,
                    "elapsed_s": round(last.elapsed_s, 3),
                },
            },
        )
    )


EVALUATION_VIDEO = "video/evaluation.mp4"
# Where the evaluation below writes its simtrace (one folder per run, DeepRacer-for-Cloud layout).
EVALUATION_SIMTRACE_GLOB = "evaluation-*/evaluation-simtrace/0-iteration.csv"


def _run_evaluation(
    config: dict[str, Any], folder: Path, source: Path | None, send: Callable[[Message], None], stop: threading.Event
) -> None:
    from race_server.sim.env import DeepRacerEnv
    from trainer.checkpoint import ModelFolderError, load_checkpoint, read_model_folder
    from trainer.evaluation import evaluate
    from trainer.job_config import parse_evaluation
    from trainer.train import policy_from_state

    spec = parse_evaluation(config)
    if source is None:
        what = f"training job {spec.model_job_id}" if spec.model_id is None else f"model {spec.model_id}"
        raise ModelFolderError(f"{what} has no model folder")
    model = read_model_folder(source)
    policy = policy_from_state(load_checkpoint(model.checkpoint_path("best")))
    send(("started",))

    from trainer.video import EvaluationVideo

    # The workshop plays this video (race_server/api/job_files.py).
    with EvaluationVideo(folder / EVALUATION_VIDEO) as video:

        def on_step(env: DeepRacerEnv) -> None:
            if stop.is_set():
                raise _Stopped
            video(env)

        try:
            result = evaluate(policy, model.metadata_raw, spec.world, spec.settings(), on_step=on_step)
        except _Stopped:
            send(("canceled", "evaluation stopped before its trials finished"))
            return
    folder.mkdir(parents=True, exist_ok=True)
    result.write_metrics(folder / "metrics" / "evaluation" / "evaluation-metrics.json")
    # DeepRacer-for-Cloud's model-upload layout, as `trackside evaluate` writes it: deepracer-utils'
    # DeepRacerLog(job folder).load_evaluation_trace() reads it
    stamp = time.strftime("%Y%m%d%H%M%S")
    result.write_simtrace(folder / f"evaluation-{stamp}" / "evaluation-simtrace" / "0-iteration.csv")
    (folder / "model").mkdir(exist_ok=True)
    (folder / "model" / "model_metadata.json").write_text(json.dumps(model.metadata_raw, indent=2))
    trials = [
        {
            "trial": t.trial,
            "lap_time": t.lap_time,
            "completion_percentage": t.completion_percentage,
            "status": t.status,
            "counts": t.counts,
        }
        for t in result.trials
    ]
    summary = {
        "trials": trials,
        "completed_laps": result.completed,
        "best_lap": result.best_lap,
        "mean_progress": result.mean_progress,
    }
    send(("progress", {**summary, "percent_complete": 100.0}))
    send(("done", {"stopped_early": False, "result": summary}))


def _job_main(
    conn: mp.connection.Connection,
    kind: str,
    config: dict[str, Any],
    folder: str,
    source: str | None,
    server_pid: int,
) -> None:
    """Entry point of a job process."""
    bind_to_parent(server_pid)
    os.nice(JOB_NICENESS)
    stop = threading.Event()
    lock = threading.Lock()

    def send(message: Message) -> None:
        with lock:
            conn.send(message)

    def listen() -> None:
        try:
            while True:
                if conn.recv()[0] == "stop":
                    stop.set()
        except (EOFError, OSError):
            # The server is gone: nobody would record this job's result, so do not run on.
            os._exit(EXIT_SERVER_GONE)

    threading.Thread(target=listen, name="job-control", daemon=True).start()
    run = _run_training if kind == "training" else _run_evaluation
    try:
        run(config, Path(folder), None if source is None else Path(source), send, stop)
    except Exception as exc:
        traceback.print_exc()
        send(("failed", _describe(exc)))


def _describe(exc: BaseException) -> str:
    from trainer.sandbox import RewardError

    if isinstance(exc, RewardError):
        return f"reward function failed: {exc}"
    if isinstance(exc, ValueError):  # config, metadata, hyperparameter and model folder errors
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def exit_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"job process was killed by {name}"
    return f"job process exited with code {exitcode} without reporting a result"


# ------------------------------------------------------------------------------------ supervisor
@dataclass
class _Running:
    job: JobRecord
    process: Any  # multiprocessing.context.SpawnProcess
    conn: mp.connection.Connection
    task: asyncio.Task[None] | None = None
    stop_sent: bool = False
    shutting_down: bool = False
    final: Message | None = field(default=None)
    scratch: Path | None = None  # a stored model written out for an evaluation; removed at the end


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobSupervisor:
    """Claims up to ``slots`` jobs at a time and runs each in a job process."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        bus: EventBus,
        data_dir: Path,
        *,
        slots: int = 1,
        poll_interval_s: float = 1.0,
        stale_after_s: float = 60.0,
        shutdown_grace_s: float = 10.0,
        models: ModelStore | None = None,
    ) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.pool = pool
        self.bus = bus
        self.data_dir = Path(data_dir)
        self.jobs_dir = self.data_dir / "jobs"
        self._models = models
        self.slots = slots
        self.poll_interval_s = poll_interval_s
        self.stale_after_s = stale_after_s
        self.shutdown_grace_s = shutdown_grace_s
        host = socket.gethostname()
        self.worker = WorkerIdentity(id=f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}", host=host, pid=os.getpid())
        self.running: dict[int, _Running] = {}
        self._wake = asyncio.Event()
        self._closing = False
        self._loop_task: asyncio.Task[None] | None = None

    # --------------------------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        await self.sweep()
        self._loop_task = asyncio.create_task(self._loop(), name="job-supervisor")

    async def close(self) -> None:
        """Stop claiming; ask running jobs to stop (final checkpoint) and kill what outlasts the grace."""
        self._closing = True
        self.wake()
        if self._loop_task is not None:
            await self._loop_task
        runs = list(self.running.values())
        for run in runs:
            run.shutting_down = True
            self._send_stop(run)
        tasks = [r.task for r in runs if r.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.shutdown_grace_s)
            for run in runs:
                if run.task in pending:
                    with contextlib.suppress(ProcessLookupError):
                        run.process.kill()
            await asyncio.gather(*tasks, return_exceptions=True)

    def wake(self) -> None:
        """Claim or stop now rather than at the next poll (the API calls it; other processes'
        submissions and stop requests are seen within ``poll_interval_s``)."""
        self._wake.set()

    @property
    def models(self) -> ModelStore:
        """Where finished training jobs register their models and evaluations find stored ones."""
        if self._models is None:
            from race_server.models.store import ModelStore

            self._models = ModelStore(self.pool, self.data_dir)
        return self._models

    # ------------------------------------------------------------------------------------- loop
    async def _loop(self) -> None:
        while not self._closing:
            try:
                await self.tick()
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
                log.warning("job supervisor tick failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
            self._wake.clear()

    async def tick(self) -> None:
        stops = await jobs.heartbeat(self.pool, self.worker.id)
        for job_id, stop_requested in stops.items():
            run = self.running.get(job_id)
            if run is not None and stop_requested:
                self._send_stop(run)
        await self.sweep()
        while not self._closing and len(self.running) < self.slots:
            async with self.pool.acquire() as conn:
                claimed = await jobs.claim(conn, self.worker, str(self.jobs_dir))
            if claimed is None:
                break
            await self._launch(*claimed)

    async def sweep(self) -> None:
        async with self.pool.acquire() as conn:
            failed = await jobs.fail_lost(
                conn, self.worker, stale_after_s=self.stale_after_s, process_alive=process_alive
            )
        for event in failed:
            log.warning("job %s failed: %s", event.job_id, event.data["error"])
            await self.publish(event)

    async def publish(self, event: JobEvent | None) -> None:
        if event is None:
            return
        for channel in event.channels:
            try:
                await self.bus.publish(channel, event.as_event())
            except BusError as exc:
                # PostgreSQL holds the truth; a client that missed this reloads the job
                log.warning("job event %s not published on %s: %s", event.id, channel, exc)

    # ------------------------------------------------------------------------------- one job
    async def _launch(self, job: JobRecord, claimed: JobEvent) -> None:
        await self.publish(claimed)
        source: str | None = None
        scratch: Path | None = None
        if job.source_job_id is not None:
            parent = await jobs.get(self.pool, job.source_job_id)
            source = parent.model_dir if parent is not None else None
        elif job.kind == "evaluation" and job.config.get("model_id") is not None:
            try:
                scratch = await self._write_stored_model(int(job.config["model_id"]))
            except Exception as exc:
                async with self.pool.acquire() as conn:
                    await self.publish(await jobs.finish(conn, job.id, self.worker.id, "failed", error=str(exc)))
                return
            source = str(scratch)
        assert job.model_dir is not None
        ctx = mp.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe()
        process = ctx.Process(
            target=_job_main,
            args=(child_conn, job.kind, job.config, job.model_dir, source, os.getpid()),
            name=f"trackside-job-{job.id}",
        )
        process.start()
        child_conn.close()
        run = _Running(job, process, parent_conn, scratch=scratch)
        self.running[job.id] = run
        run.task = asyncio.create_task(self._watch(run), name=f"job-{job.id}")
        log.info("job %s (%s) started in process %s", job.id, job.kind, process.pid)

    async def _write_stored_model(self, model_id: int) -> Path:
        """A stored model's folder, written out for an evaluation job's process to read."""
        record = await self.models.get(model_id)
        if record is None or record.status != "ready":
            raise LookupError(f"model {model_id} is gone or not ready")
        folder = self.models.new_staging()
        return await self.models.materialize(model_id, folder)

    async def _register(self, run: _Running) -> tuple[int | None, list[dict[str, Any]]]:
        """Put a finished training job's folder into the model store: (model id, problems)."""
        job = run.job
        assert job.model_dir is not None
        result = await self.models.register_training(
            job.owner_id, job.name, Path(job.model_dir), f"trained by job {job.id}"
        )
        if result.model is None:
            return None, [p.as_json() for p in result.problems if p.severity == "error"]
        return result.model.id, []

    def _send_stop(self, run: _Running) -> None:
        if run.stop_sent:
            return
        run.stop_sent = True
        with contextlib.suppress(OSError):
            run.conn.send(("stop",))

    async def _watch(self, run: _Running) -> None:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        pump = threading.Thread(target=_pump, args=(run, loop, inbox), name=f"job-{run.job.id}-pipe", daemon=True)
        pump.start()
        job_id, worker_id = run.job.id, self.worker.id
        try:
            while True:
                message = await inbox.get()
                if message[0] == "exit":
                    exitcode = message[1]
                    break
                if message[0] == "started":
                    async with self.pool.acquire() as conn:
                        await self.publish(await jobs.mark_running(conn, job_id, worker_id, run.process.pid))
                elif message[0] == "progress":
                    async with self.pool.acquire() as conn:
                        await self.publish(await jobs.record_progress(conn, job_id, worker_id, message[1]))
                else:
                    run.final = message
            status, error, stopped_early, result = _outcome(run, exitcode)
            model_id: int | None = None
            if status == "completed" and run.job.kind == "training":
                try:
                    model_id, problems = await self._register(run)
                except Exception as exc:  # the trained folder stays; the job still completed
                    log.exception("job %s: registering its model failed", job_id)
                    problems = [{"code": "MODEL_REGISTRATION_FAILED", "message": f"{type(exc).__name__}: {exc}"}]
                if problems:
                    result = {**(result or {}), "model_errors": problems}
            async with self.pool.acquire() as conn:
                event = await jobs.finish(
                    conn,
                    job_id,
                    worker_id,
                    status,
                    error=error,
                    stopped_early=stopped_early,
                    result=result,
                    model_id=model_id,
                )
            await self.publish(event)
            log.info("job %s %s%s", job_id, status, f": {error}" if error else "")
        except Exception:
            log.exception("job %s: recording its outcome failed", job_id)
        finally:
            run.conn.close()
            if run.scratch is not None:
                await asyncio.to_thread(shutil.rmtree, run.scratch, True)
            self.running.pop(job_id, None)
            self.wake()


def _outcome(run: _Running, exitcode: int | None) -> tuple[str, str | None, bool, dict[str, Any] | None]:
    final = run.final
    if final is not None and final[0] == "done":
        return "completed", None, bool(final[1]["stopped_early"]), final[1]["result"]
    if final is not None and final[0] == "canceled":
        return "canceled", str(final[1]), False, None
    if final is not None and final[0] == "failed":
        return "failed", str(final[1]), False, None
    if run.shutting_down:
        return "failed", f"the server shut down before the job finished ({exit_reason(exitcode)})", False, None
    return "failed", exit_reason(exitcode), False, None


def _pump(run: _Running, loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue[Message]) -> None:
    """Blocking reads of the job's pipe on a thread of its own, handed to the event loop."""

    def post(message: Message) -> None:
        with contextlib.suppress(RuntimeError):  # the loop already closed
            loop.call_soon_threadsafe(inbox.put_nowait, message)

    try:
        while True:
            post(run.conn.recv())
    except (EOFError, OSError):
        pass
    run.process.join()
    post(("exit", run.process.exitcode))
