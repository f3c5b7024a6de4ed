"""Host-side race benchmark figures (``trackside bench race``): clock jitter and speed-control latency.

``measure_host`` drives a started, real-time RaceHost: it launches a reference-driver run, changes
the speed multiplier at random moments (seeded) and reads the child's clock statistics at the end.
``speed_control_apply_p99_ms`` is parent send → applied in the simulator, both ends read with
``time.monotonic()`` (one system-wide clock on Linux); one physics sub-step (a fraction of the 66.7 ms
tick) bounds it because a change is applied between the sub-steps of the tick in progress.
``tick_jitter_p99_ms`` is how late ticks start against their deadlines, measured inside the simulator
process.

The websocket fan-out part (``ws_clients`` subscribers, ``lap_event_fanout_p99_ms``) belongs to the
server; it can run ``measure_host`` on its own loop next to its clients.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import numpy as np

from race_server.live.events import RunEnded
from race_server.live.host import DriverSpec, RaceHost, RunSpec

SLIDER = tuple(round(0.5 + 0.05 * i, 2) for i in range(31))


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else 0.0


async def _drain(host: RaceHost) -> None:
    async for event in host.events():
        if isinstance(event, RunEnded):
            return


async def measure_host(
    host: RaceHost,
    seconds: float,
    *,
    seed: int = 0,
    route_id: str = "reinvent_base",
    driver: DriverSpec | None = None,
) -> dict[str, Any]:
    """Run one ``seconds``-long run on a started real-time ``host`` and measure it (``driver``:
    the reference driver unless given)."""
    rng = np.random.default_rng(seed)
    await host.stats(reset=True)
    host.speed_apply_ms.clear()
    run = RunSpec(
        race_id=host.race_id,
        run_id=1,
        racer_id=1,
        route_id=route_id,
        reverse=False,
        objects={},
        driver=driver or DriverSpec("reference", reference_speed=1.2),
        slot_s=seconds + 1.0,
        countdown_s=0.0,
    )
    drain = asyncio.create_task(_drain(host))
    await host.launch(run)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    changes = 0
    try:
        while loop.time() < deadline:
            # random phase against the 15 Hz grid, so the latency figure samples the whole period
            await asyncio.sleep(float(rng.uniform(0.05, 0.25)))
            await host.set_speed_multiplier(float(rng.choice(SLIDER[:17])))
            changes += 1
        stats = await host.stats()
        await host.abort("benchmark finished")
        await drain
    finally:
        drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drain
    latencies = list(host.speed_apply_ms)
    return {
        "seconds": seconds,
        "host_priority": host.priority,
        "ticks": int(stats["ticks"]),
        "tick_jitter_p50_ms": stats["tick_jitter_p50_ms"],
        "tick_jitter_p99_ms": stats["tick_jitter_p99_ms"],
        "tick_jitter_max_ms": stats["tick_jitter_max_ms"],
        "tick_work_p99_ms": stats["tick_work_p99_ms"],
        "speed_changes": changes,
        "speed_control_apply_p50_ms": _p(latencies, 50),
        "speed_control_apply_p99_ms": _p(latencies, 99),
        "speed_control_apply_max_ms": max(latencies, default=0.0),
    }


async def _host_benchmark(seconds: float, seed: int) -> dict[str, Any]:
    host = RaceHost(1, realtime=True)
    await host.start("reinvent_base", False)
    try:
        return await measure_host(host, seconds, seed=seed)
    finally:
        await host.close()


def run_race_benchmark(ws_clients: int = 500, seconds: float = 20.0, seed: int = 0) -> dict[str, Any]:
    """The host-side figures of the race benchmark; ``ws_clients`` is recorded for the server's part."""
    result = asyncio.run(_host_benchmark(seconds, seed))
    return {"ws_clients": ws_clients, **result}
