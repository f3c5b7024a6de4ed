"""``trackside serve --demo``: an open LIVE race and a classic race with demo racers driven by the
built-in reference driver, so a race is running within a minute of start-up.

The LIVE race runs itself: simulator launched, entries closed, each racer launched in turn; when
everyone has raced the winner is declared and the next round's LIVE race replaces it. The start-up
banner (and the log at each new round) gives the status page link (``/?race=ID&viewer=TOKEN``).

The demo's races are found again after a restart through the ``demo_races`` key of
``server_config``: the classic race and an unfinished LIVE round are reused (with a fresh viewer
link: only the token's digest is stored), so a long-lived data dir holds one of each, not a pile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from race_server import auth, protocol
from race_server.cli_owner import DEMO_EMAIL_DOMAIN
from race_server.db import races, server_config, users
from race_server.queue.evaluator import Evaluator
from race_server.queue.machine import QueueError
from race_server.queue.service import QueueService
from race_server.races.config import parse_race_config

log = logging.getLogger("trackside.demo")

TRACK = "Bowtie_track"
DEMO_RACERS = (("demo-ann", 1.2), ("demo-bob", 1.5), ("demo-cy", 1.8))
MARKER_KEY = "demo_races"


async def _user(pool: asyncpg.Pool, role: str, alias: str) -> int:
    email = f"{alias}@{DEMO_EMAIL_DOMAIN}"
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
        # race id → status page path with its viewer token, for the banner; the LIVE race's is set
        # once it exists (``ready``)
        self.classic_link: str | None = None
        self.live_link: str | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="demo")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _create(self, organizer: int, racers: list[int], fmt: str, name: str) -> int:
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
        return race.id

    async def _viewer_link(self, race_id: int, what: str) -> str:
        token = auth.new_secret("tsv")
        await races.set_viewer_hash(self.pool, race_id, auth.digest(token))
        link = f"/?race={race_id}&viewer={token}"
        log.info("demo %s race %s: watch at %s", what, race_id, link)
        return link

    async def _reusable(self, race_id: object, fmt: str) -> bool:
        """The classic race is reused while it exists (its results stay worth a look); a LIVE
        round while it is neither over (winner declared) nor past its end."""
        if not isinstance(race_id, int):
            return False
        race = await races.get(self.pool, race_id)
        if race is None or race.format != fmt:
            return False
        if fmt == "classic":
            return True
        over = (race.queue_state or {}).get("machine", {}).get("winner") is not None
        return not over and race.config.status(datetime.now(UTC)) != "closed"

    async def _remember(self, marker: dict[str, Any]) -> None:
        await server_config.put(self.pool, MARKER_KEY, marker)

    async def _run(self) -> None:
        organizer = await _user(self.pool, "organizer", "demo-organizer")
        racers = [await _user(self.pool, "racer", alias) for alias, _ in DEMO_RACERS]
        marker: dict[str, Any] = dict(await server_config.get(self.pool, MARKER_KEY) or {})
        if not await self._reusable(marker.get("classic"), "classic"):
            marker["classic"] = await self._create(organizer, racers, "classic", "Demo classic cup")
            await self._remember(marker)
            self.evaluator.wake()
        self.classic_link = await self._viewer_link(marker["classic"], "classic")
        while True:
            if not await self._reusable(marker.get("live"), "live"):
                previous = marker.get("live")
                marker["round"] = int(marker.get("round", 0)) + 1
                marker["live"] = await self._create(organizer, racers, "live", f"Demo LIVE #{marker['round']}")
                await self._remember(marker)
                if isinstance(previous, int):
                    await self._forget(previous)
            race_id = int(marker["live"])
            self.live_link = await self._viewer_link(race_id, "LIVE")
            self.ready.set()
            try:
                await self._drive(race_id)
            except QueueError as error:
                log.warning("demo race %s stopped: %s", race_id, error.message)
                await self.queue.release(race_id)
                await asyncio.sleep(10)  # e.g. the simulator failed: try again, not in a tight loop
                continue
            await self.queue.release(race_id)

    async def _forget(self, race_id: int) -> None:
        """The finished round gives way to the next: one demo LIVE race at a time."""
        await self.queue.release(race_id)
        await races.delete(self.pool, race_id)

    async def _command(self, race_id: int, message: protocol.ClientMessage) -> None:
        await self.queue.command(race_id, message, editor="demo")

    async def _drive(self, race_id: int) -> None:
        """Run the race from wherever it stands: fresh, or restored after a restart (the queue
        service relaunches a simulator that was running and marks an interrupted run for relaunch)."""
        lr = await self.queue.live(race_id)
        if lr.machine.simulator in ("not_created", "failed"):
            await self._command(race_id, protocol.LaunchSimulator(req=0, race_id=race_id))
        while lr.machine.simulator != "running":
            if lr.machine.simulator == "failed":
                raise QueueError("simulator_failed", "the demo simulator failed to start")
            await asyncio.sleep(0.5)  # the demo polls its own race; clients get events
        if lr.machine.entries_open:
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
