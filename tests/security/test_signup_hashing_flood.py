"""Threat: unauthenticated sign-ups without an invitation make the server hash each password with
argon2 (64 MiB, tens of ms of CPU) before finding the invitation missing, so a handful of parallel
requests stall everything. The invitation is checked first, and hashing has a bounded pool."""

from __future__ import annotations

import asyncio
import resource
import threading

import httpx

from race_server import auth
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.helpers import PASSWORD, login, make_user

PARALLEL = 16


def cpu_seconds() -> float:
    """CPU time of this whole process (the server under test runs in it), all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def test_signups_without_invitation_cost_no_hashing(server: LiveServer) -> None:
    started = cpu_seconds()
    await auth.hash_password(PASSWORD)
    one_hash = cpu_seconds() - started
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:

        async def signup(n: int) -> httpx.Response:
            body = {"email": f"flood{n}@example.com", "password": PASSWORD, "invitation": "tsi_made_up"}
            return await client.post("/api/auth/signup", json=body)

        started = cpu_seconds()
        responses = await asyncio.gather(*(signup(n) for n in range(PARALLEL)))
        spent = cpu_seconds() - started
    assert all(r.status_code == 403 and r.json()["code"] == "invitation_required" for r in responses)
    # Hashing each would cost PARALLEL × one_hash; the HTTP handling itself is far below a few hashes.
    assert spent < 4 * one_hash, f"{spent:.2f} s CPU for {PARALLEL} refused sign-ups; one hash is {one_hash:.2f} s"


async def test_parallel_signups_hash_on_a_bounded_pool(server: LiveServer, settings: Settings) -> None:
    """16 valid sign-ups at once run their argon2 hashes on the few threads reserved for it (each
    hash holds 64 MiB: the default executor would run six at once and starve other blocking work)."""
    await make_user(settings, "organizer", "org@example.com")
    async with login(server, "org@example.com") as organizer:
        assert (await organizer.put("/api/server/signup-mode", json={"mode": "open"})).status_code == 200
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
        bodies = [{"email": f"racer{n}@example.com", "password": PASSWORD} for n in range(PARALLEL)]
        responses = await asyncio.gather(*(client.post("/api/auth/signup", json=body) for body in bodies))
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses if r.status_code != 201]
    hashing_threads = [t for t in threading.enumerate() if t.name.startswith("argon2")]
    assert 1 <= len(hashing_threads) <= auth.PASSWORD_THREADS
