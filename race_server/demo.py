"""``trackside serve --demo``: an open LIVE race and a classic race with demo racers driven by the
built-in reference driver, so a race is running within a minute of start-up.

The LIVE race runs itself: simulator launched, entries closed, each racer launched in turn; when
everyone has raced the winner is declared and a fresh LIVE race starts. Watch it at the status page
link written to the log (``/?race=ID&viewer=TOKEN``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from datetime import UTC, datetime, timedelta

import asyncpg

from race_server import auth, protocol
from race_server.db import races, users
from race_server.queue.evaluator import Evaluator
from race_server.queue.machine import QueueError
from race_server.queue.service import QueueService
from race_server.races.config import parse_race_config

log = logging.getLogger("trackside.demo")

TRACK = "Bowtie_track"
DEMO_RACERS = (("demo-ann", 1.2), ("demo-bob", 1.5), ("demo-cy", 1.8))


async def _user(pool: asyncpg.Pool, role: str, alias: str) -> int:
    email = f"{alias}@demo.trackside.invalid"
    found = await users.by_email(pool, email)
    if found is not None:
        return found.id
    password_hash = await auth.hash_password(secrets.token_urlsafe(24))  # nobody signs in as a demo user
    return (await users.create(pool, role=role, email=email, password_hash=password_hash, alias=alias)).id


class DemoRunner:
    def __init__(self, pool: asyncpg.Pool, queue: QueueService, evaluator: Evaluator) -> None:
        self.pool = pool
        self.queue = queue
        self.evaluator = evaluator
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="demo")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _race(self, organizer: int, racers: list[int], fmt: str, name: str) -> int:
        start = datetime.now(UTC) - timedelta(minutes=1)
        config = parse_race_config({
            "name": name, "format": fmt, "track_id": TRACK, "start": start.isoformat(),
            "end": (start + timedelta(hours=4)).isoformat(), "time_per_racer_min": 1, "replay_s": 5,
            "description": "Demo racers driven by Trackside's reference driver.",
        })  # fmt: skip
        race = await races.create(self.pool, organizer, config)
        for racer, (_, speed) in zip(racers, DEMO_RACERS, strict=True):
            await races.add_member(self.pool, race.id, racer)
            await races.add_submission(
                self.pool, race_id=race.id, racer_id=racer, model_id=None,
                driver={"kind": "reference", "reference_speed": speed}, loadable=True, error=None,
                status="queued" if fmt == "classic" else "entered",
            )  # fmt: skip
        token = auth.new_secret("tsv")
        await races.set_viewer_hash(self.pool, race.id, auth.digest(token))
        log.warning("demo %s race %s: watch at /?race=%s&viewer=%s", fmt, race.id, race.id, token)
        return race.id

    async def _run(self) -> None:
        organizer = await _user(self.pool, "organizer", "demo-organizer")
        racers = [await _user(self.pool, "racer", alias) for alias, _ in DEMO_RACERS]
        await self._race(organizer, racers, "classic", "Demo classic cup")
        self.evaluator.wake()
        round_no = 1
        while True:
            race_id = await self._race(organizer, racers, "live", f"Demo LIVE #{round_no}")
            try:
                await self._drive(race_id)
            except QueueError as error:
                log.warning("demo race %s stopped: %s", race_id, error.message)
            await self.queue.release(race_id)
            round_no += 1

    async def _command(self, race_id: int, message: protocol.ClientMessage) -> None:
        await self.queue.command(race_id, message, editor="demo")

    async def _drive(self, race_id: int) -> None:
        await self._command(race_id, protocol.LaunchSimulator(req=0, race_id=race_id))
        lr = await self.queue.live(race_id)
        while lr.machine.simulator != "running":
            if lr.machine.simulator == "failed":
                raise QueueError("simulator_failed", "the demo simulator failed to start")
            await asyncio.sleep(0.5)  # the demo polls its own race; clients get events
        await self._command(race_id, protocol.SetEntriesOpen(req=0, race_id=race_id, open=False))
        while True:
            machine = lr.machine
            if machine.run is None:
                if not machine.queue:
                    break
                top = machine.queue[0]
                launch: protocol.ClientMessage = (
                    protocol.RelaunchRacer(req=0, race_id=race_id, racer_id=top.racer_id)
                    if top.relaunch
                    else protocol.LaunchRacer(req=0, race_id=race_id, racer_id=top.racer_id)
                )
                await self._command(race_id, launch)
            await asyncio.sleep(0.5)
        with contextlib.suppress(QueueError):
            await self._command(race_id, protocol.DeclareWinner(req=0, race_id=race_id))
        await asyncio.sleep(10)  # the winner stays on screen a moment before the next round
