"""Threats: (a) a burst of parallel password guesses slips past the failed-login limit, because the
limit was checked before verifying and the failure recorded after; (b) a stranger locks the real
owner out with a few bad guesses. Every guess is counted before its password is verified, and a
browser that signed in as the account before keeps a budget of its own."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from race_server import auth
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.helpers import PASSWORD, make_user

BURST = 300


async def test_parallel_guesses_verify_at_most_the_limit(server: LiveServer, settings: Settings) -> None:
    await make_user(settings, "organizer", "org@example.com")
    limits = httpx.Limits(max_connections=BURST)
    async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as attacker:

        async def guess(n: int) -> int:
            body = {"email": "org@example.com", "password": f"guess number {n}"}
            return (await attacker.post("/api/auth/login", json=body)).status_code

        statuses = Counter(await asyncio.gather(*(guess(n) for n in range(BURST))))
        # 401 = the password was verified (and wrong); 429 = refused before verifying.
        assert statuses[401] == settings.login_max_failures, statuses
        assert statuses[429] == BURST - settings.login_max_failures, statuses
        # The right password from the attacker's browser stays refused: the burst spent the budget.
        right = await attacker.post("/api/auth/login", json={"email": "org@example.com", "password": PASSWORD})
        assert right.status_code == 429


async def test_strangers_cannot_lock_the_owner_out_of_a_known_browser(server: LiveServer, settings: Settings) -> None:
    await make_user(settings, "organizer", "org@example.com")
    credentials = {"email": "org@example.com", "password": PASSWORD}
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as owner:
        assert (await owner.post("/api/auth/login", json=credentials)).status_code == 200
        assert auth.DEVICE_COOKIE in owner.cookies
        assert (await owner.post("/api/auth/logout")).status_code == 200
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as stranger:
            for n in range(settings.login_max_failures):
                wrong = {"email": "org@example.com", "password": f"not it {n} at all"}
                assert (await stranger.post("/api/auth/login", json=wrong)).status_code == 401
            assert (await stranger.post("/api/auth/login", json=credentials)).status_code == 429
            # The owner's browser signed in before: its own budget, untouched by the stranger.
            back = await owner.post("/api/auth/login", json=credentials)
            assert back.status_code == 200, back.text
            # A forged device cookie is just an unknown browser.
            stranger.cookies.set(auth.DEVICE_COOKIE, "1.forged.signature", path="/api/auth/")
            assert (await stranger.post("/api/auth/login", json=credentials)).status_code == 429
