"""`serve --demo` across restarts: the demo's races are found again, not created anew at every start."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
import uuid
from pathlib import Path

import asyncpg
import pytest

from race_server.api.race_runtime import RaceOptions
from race_server.banner import announce
from race_server.demo import MARKER_KEY
from race_server.settings import Settings
from tests.conftest import LiveServer

READY_S = 90  # start-up plus the simulator process on a loaded machine


async def start_demo(settings: Settings) -> LiveServer:
    server = LiveServer(settings, bus_prefix=f"test-{uuid.uuid4().hex[:8]}:")
    server.app.state.race_options = RaceOptions(realtime=True, countdown_s=1, demo=True)
    await server.start()
    await asyncio.wait_for(server.app.state.race_demo.ready.wait(), READY_S)
    return server


async def demo_state(settings: Settings) -> tuple[dict[str, int], list[tuple[int, str]]]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        marker = json.loads(await conn.fetchval("SELECT value FROM server_config WHERE key = $1", MARKER_KEY))
        rows = await conn.fetch("SELECT id, format FROM races ORDER BY id")
        return marker, [(int(r["id"]), str(r["format"])) for r in rows]
    finally:
        await conn.close()


async def test_two_starts_reuse_the_demo_races(
    settings: Settings, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    first = await start_demo(settings)
    first_links = (first.app.state.race_demo.live_link, first.app.state.race_demo.classic_link)
    await first.stop()
    marker, races = await demo_state(settings)
    assert races == [(marker["classic"], "classic"), (marker["live"], "live")]

    second = await start_demo(settings)
    demo = second.app.state.race_demo
    try:
        assert (await demo_state(settings)) == (marker, races), "the same races, none added"
        assert demo.live_link.startswith(f"/?race={marker['live']}&viewer=tsv_")
        assert demo.live_link != first_links[0], "a fresh viewer link: only its digest is stored"

        await announce(second.app.state, "0.0.0.0", 8123, "text")
        banner = capsys.readouterr().err
        assert f"Demo LIVE race:    http://127.0.0.1:8123{demo.live_link}" in banner
        assert "Sign in:           http://127.0.0.1:8123/" in banner
        assert "trackside admin create-organizer" in banner, "no organizer account yet"
        with caplog.at_level(logging.INFO, logger="trackside.banner"):
            await announce(second.app.state, "127.0.0.1", 8123, "json")
        (record,) = [r for r in caplog.records if r.name == "trackside.banner"]
        live_url = f"http://127.0.0.1:8123{demo.live_link}"
        # a log shipper gets the link without its viewer token; the file beside the data holds it whole
        assert record.__dict__["demo_live_url"] == f"http://127.0.0.1:8123/?race={marker['live']}&viewer=[redacted]"
        links = Path(record.__dict__["links_file"])
        mode, text = await asyncio.to_thread(lambda: (stat.S_IMODE(links.stat().st_mode), links.read_text()))
        assert links.parent == settings.data_dir and mode == 0o600
        assert f"demo_live: {live_url}\n" in text
    finally:
        await second.stop()


async def test_a_finished_live_round_gives_way_to_the_next(settings: Settings) -> None:
    first = await start_demo(settings)
    await first.stop()
    marker, _ = await demo_state(settings)
    conn = await asyncpg.connect(settings.database_url)
    try:  # the round ended while the server was down: its winner is declared
        await conn.execute(
            "UPDATE races SET queue_state = jsonb_set(queue_state, '{machine,winner}', to_jsonb($2::bigint)) "
            "WHERE id = $1",
            marker["live"],
            1,
        )
    finally:
        await conn.close()

    second = await start_demo(settings)
    try:
        after, races = await demo_state(settings)
        assert after["classic"] == marker["classic"] and after["live"] != marker["live"]
        assert after["round"] == marker["round"] + 1
        assert races == [(after["classic"], "classic"), (after["live"], "live")], "the finished round is gone"
    finally:
        await second.stop()
