"""``trackside bench stream --json``: the live video's costs and latencies (also
``python -m race_server.bench.stream --json``).

Figures (one 720p30 VP8 race, this machine):

- ``render_ms_per_frame_720p`` (chase view; ``render_ms_by_view`` has all three),
  ``overlay_ms_per_frame_720p`` and ``encode_ms_per_frame_720p`` (RGBA → YUV 4:2:0 and VP8), each
  the median frame over a lap of poses on one core.
- ``cpu_pct_by_viewers``: the server process's CPU (% of one core: the fan-out and every viewer's
  RTP/SRTP sending) with 1, 10, 50 and 100 aiortc viewer peers on loopback, which live in another
  process (`bench.stream_viewers`); ``added_core_pct_per_viewer`` is the slope from 1 to 100 viewers.
  The encoder process's own CPU is ``encoder_cpu_pct``.
- ``glass_to_glass_ms_p50`` / ``p95``: capture (the frame's corner code) → presented in headless
  Chromium (``requestVideoFrameCallback``), loopback, one clock. ``late_frames_pct``: frames the
  page presented more than `LATE_MS` after capture, plus frames it never presented, out of the
  frames encoded while it watched; ``browser_frames_*`` say where the missing ones went (never
  received, dropped by the decoder, or received but never composited).
- Per viewer count: ``encoded_fps_at_N`` (the encoder's output), ``sent_fps_min_at_N`` /
  ``sent_fps_median_at_N`` (frames the server handed to each viewer's sender) and
  ``viewer_fps_min_at_N`` (frames the slowest peer received): the first two are the server's
  work, the last also depends on the load generator keeping up on the same machine.
- ``tick_jitter_p99_ms``: the race clock (a real-time RaceHost with a reference-driver run, whose
  events drive the picture) while the 100 viewers watch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from race_server.live.host import DriverSpec, RaceHost, RunSpec
from race_server.overlay import BroadcastState, Overlay
from race_server.sim.broadcast import VIEWS, BroadcastRenderer, Pose
from race_server.sim.tracks import load_track
from race_server.stream.codec import FrameEncoder
from race_server.stream.encoder import EncoderConfig
from race_server.stream.race_stream import RaceStream
from race_server.stream.whep import WhepHub

ROUTE = "reinvent_base"
VIEWER_STEPS = (1, 10, 50, 100)
LATE_MS = 150.0
# 600 frames: one lost frame moves late_frames_pct by 0.17, so the 1 % target is a figure, not noise
BROWSER_WINDOW_S = 20.0


def _p(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values, dtype=np.float64), q)), 2) if values else -1.0


def measure_frame_costs(frames: int = 90, route_id: str = ROUTE) -> dict[str, Any]:
    """Render / overlay / encode milliseconds per 720p frame over poses along a lap: the median frame
    after a warm-up (caches filled), so a busy shared machine skews the figure less than a mean."""
    track = load_track(route_id)
    renderer = BroadcastRenderer(track)
    overlay = Overlay(track)
    encoder = FrameEncoder("vp8", 1280, 720, 30, 2_500_000, 30)
    poses = [Pose(*track.pose_at(track.length * k / frames)) for k in range(frames)]
    render: dict[str, float] = {}
    for view in VIEWS:
        renderer.render(view, poses[0])
        times = []
        for pose in poses:
            started = time.perf_counter()
            renderer.render(view, pose)
            times.append(time.perf_counter() - started)
        render[view] = float(np.median(times)) * 1000.0
    overlay_times, encode_times = [], []
    for k, pose in enumerate(poses):
        image = renderer.render("chase", pose)
        state = BroadcastState(phase="racing", racer_name="Bench", t=k / 30, x=pose.x, y=pose.y, yaw=pose.yaw,
                               speed=1.5 + k / 100, lap_time_ms=k * 33, time_remaining_ms=180_000 - k * 33,
                               sector_colours=("purple", "green", None))  # fmt: skip
        started = time.perf_counter()
        overlay.draw(state, image)
        overlay_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        encoder.encode(image, k * 3000)
        encode_times.append(time.perf_counter() - started)
    skip = 5  # first frames: font loading, panels and map drawn into the caches, encoder start-up
    return {
        "render_ms_per_frame_720p": round(render["chase"], 2),
        "render_ms_by_view": {view: round(ms, 2) for view, ms in render.items()},
        "overlay_ms_per_frame_720p": round(float(np.median(overlay_times[skip:])) * 1000.0, 2),
        "encode_ms_per_frame_720p": round(float(np.median(encode_times[skip:])) * 1000.0, 2),
    }


def _cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Viewers:
    """The viewer peers' process, driven over a pipe (see `bench.stream_viewers`)."""

    def __init__(self) -> None:
        from race_server.bench.stream_viewers import viewers_main

        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=viewers_main, args=(child, os.getpid()), name="bench-viewers", daemon=True)
        self.proc.start()
        child.close()

    async def ask(self, op: str, payload: Any = None) -> Any:
        self.conn.send((op, payload))
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        loop.add_reader(self.conn.fileno(), ready.set)
        try:
            while not self.conn.poll():
                await ready.wait()
                ready.clear()
        finally:
            loop.remove_reader(self.conn.fileno())
        return self.conn.recv()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ask("close"), 20)
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


async def _add_viewers(viewers: _Viewers, hub: WhepHub, stream: RaceStream, count: int) -> None:
    offers = await viewers.ask("add", count)
    answers = [(await hub.open(stream, offer))[1] for offer in offers]
    await viewers.ask("answers", answers)


async def _all_watching(viewers: _Viewers, count: int, limit_s: float = 60.0) -> float:
    """Seconds until every viewer has a picture (ICE, DTLS, the first keyframe), asked twice a second."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        frames = await viewers.ask("frames")
        if len(frames) >= count and min(frames) > 0:
            break
        await asyncio.sleep(0.5)
    return round(time.monotonic() - started, 2)


async def _glass_to_glass(stream: RaceStream, hub: WhepHub, seconds: float) -> dict[str, Any]:
    """One headless Chromium page watching over WHEP (a minimal HTTP endpoint on loopback)."""
    import uvicorn
    from playwright.async_api import async_playwright
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from race_server.stream.browser import CHROMIUM, CHROMIUM_ARGS, probe_script

    async def offer(request: Request) -> Response:
        session_id, answer = await hub.open(stream, (await request.body()).decode())
        return Response(answer, 201, media_type="application/sdp", headers={"Location": f"/whep/{session_id}"})

    async def delete(request: Request) -> Response:
        await hub.close(request.path_params["session_id"])
        return Response(status_code=200)

    async def page(request: Request) -> Response:
        return PlainTextResponse("trackside stream bench")

    app = Starlette(routes=[Route("/", page), Route("/whep", offer, methods=["POST"]),
                            Route("/whep/{session_id}", delete, methods=["DELETE"])])  # fmt: skip
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 (uvicorn signals start-up with a flag only)
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                tab = await browser.new_page()
                await tab.goto(f"http://127.0.0.1:{port}/")
                error = await tab.evaluate(probe_script(), {"url": f"http://127.0.0.1:{port}/whep", "token": None})
                if error:
                    raise RuntimeError(error)
                await tab.wait_for_function("window.__video.frames.length > 30", timeout=30_000)
                shown_before = await tab.evaluate("window.__video.frames.length")
                counters_before = await tab.evaluate("window.__video.counters()")
                encoded_before = stream.frames_encoded
                await asyncio.sleep(seconds)
                encoded = stream.frames_encoded - encoded_before
                counters_after = await tab.evaluate("window.__video.counters()")
                frames = (await tab.evaluate("window.__video.frames"))[shown_before:]
                await tab.evaluate("window.__video.close()")
            finally:
                await browser.close()
    finally:
        server.should_exit = True
        await serving
    return {**late_frames(frames, counters_before, counters_after, encoded),
            "browser_video_width": frames[-1]["width"] if frames else 0}  # fmt: skip


def late_frames(
    frames: list[dict[str, Any]], before: dict[str, float], after: dict[str, float], encoded: int
) -> dict[str, Any]:
    """Late = never presented (lost, dropped by the decoder or skipped by the compositor) plus presented
    more than LATE_MS after capture. The page's frame callback may skip frames while its main thread
    is busy, so the presented count comes from the browser's own counter, and the share of them that
    were late from the callbacks that did run."""
    delta = {key: after[key] - before[key] for key in after}
    ages = [float(f["age"]) for f in frames if f["age"] is not None]
    presented = int(delta["presented"])
    late_share = sum(age > LATE_MS for age in ages) / len(ages) if ages else 1.0
    not_presented = max(encoded - presented, 0)
    emitted = delta["jitterBufferEmitted"]
    late = not_presented + late_share * presented
    return {
        "glass_to_glass_ms_p50": _p(ages, 50),
        "glass_to_glass_ms_p95": _p(ages, 95),
        "late_frames_pct": round(100.0 * late / max(encoded, 1), 2),
        "browser_frames_encoded": encoded,
        "browser_frames_received": int(delta["received"]),
        "browser_frames_decoded": int(delta["decoded"]),
        "browser_frames_dropped": int(delta["rtpDropped"]),
        "browser_frames_presented": presented,
        "browser_frames_timed": len(ages),
        "browser_frames_presented_late": round(late_share * presented),
        "browser_packets_lost": int(delta["packetsLost"]),
        "browser_freezes": int(delta["freezes"]),
        "browser_jitter_buffer_ms": round(1000.0 * delta["jitterBufferDelayS"] / max(emitted, 1), 1),
    }


async def _pump(host: RaceHost, stream: RaceStream) -> None:
    async for event in host.events():
        stream.apply(event.wire)


async def _stream_benchmark(window_s: float, browser_s: float | None, steps: tuple[int, ...]) -> dict[str, Any]:
    host = RaceHost(1, realtime=True)
    stream = RaceStream(EncoderConfig(race_id=1, route_id=ROUTE))
    hub = WhepHub(max_sessions=1000)
    viewers: _Viewers | None = None
    await host.start(ROUTE, False)
    await stream.start()
    stream.feed.names[1] = "Bench racer"
    pump = asyncio.create_task(_pump(host, stream))
    result: dict[str, Any] = {}
    try:
        run = RunSpec(race_id=1, run_id=1, racer_id=1, route_id=ROUTE, reverse=False, objects={},
                      driver=DriverSpec("reference", reference_speed=1.5), slot_s=3600.0, countdown_s=0.0)  # fmt: skip
        await host.launch(run)
        viewers = _Viewers()
        cpu: dict[str, float] = {}
        have = 0
        for count in steps:
            await _add_viewers(viewers, hub, stream, count - have)
            have = count
            result[f"connect_s_at_{count}"] = await _all_watching(viewers, count)
            if count == steps[-1]:
                await host.stats(reset=True)
            cpu0, enc0, wall0 = _cpu_s(), _proc_cpu_s(stream.pid or 0), time.monotonic()
            frames0 = await viewers.ask("frames")
            sent0 = {sid: s.track.delivered for sid, s in hub.sessions.items()}
            encoded0 = stream.frames_encoded
            await asyncio.sleep(window_s)
            wall = time.monotonic() - wall0
            cpu[str(count)] = round(100.0 * (_cpu_s() - cpu0) / wall, 1)
            result["encoder_cpu_pct"] = round(100.0 * (_proc_cpu_s(stream.pid or 0) - enc0) / wall, 1)
            frames = await viewers.ask("frames")
            got = [b - a for a, b in zip(frames0, frames, strict=False)] + frames[len(frames0) :]
            result[f"viewer_fps_min_at_{count}"] = round(min(got) / wall, 1) if got else 0.0
            # the server's side: frames each viewer's sender took, against frames encoded
            sent = [s.track.delivered - sent0.get(sid, 0) for sid, s in hub.sessions.items()]
            result[f"encoded_fps_at_{count}"] = round((stream.frames_encoded - encoded0) / wall, 1)
            result[f"sent_fps_min_at_{count}"] = round(min(sent) / wall, 1) if sent else 0.0
            result[f"sent_fps_median_at_{count}"] = round(float(np.median(sent)) / wall, 1) if sent else 0.0
            if count == steps[-1]:
                stats = await host.stats()
                result["tick_jitter_p99_ms"] = round(float(stats["tick_jitter_p99_ms"]), 2)
                result["tick_jitter_max_ms"] = round(float(stats["tick_jitter_max_ms"]), 2)
                result["host_priority"] = host.priority
        result["cpu_pct_by_viewers"] = cpu
        first, last = steps[0], steps[-1]
        result["added_core_pct_per_viewer"] = round((cpu[str(last)] - cpu[str(first)]) / (last - first), 3)
        result["frames_encoded"] = stream.frames_encoded
        if browser_s:
            # Glass-to-glass is one viewer's experience. The synthetic audience shares this machine's
            # two cores with the server and Chromium, so it leaves first: with it, the figure would
            # measure the load generator (its per-viewer cost is the figure above).
            await viewers.close()
            viewers = None
            await hub.close_all()
            result.update(await _glass_to_glass(stream, hub, browser_s))
    finally:
        if viewers is not None:
            await viewers.close()
        await hub.close_all()
        await stream.close()
        await host.close()
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
    return result


def run_stream_bench(
    window_s: float = 5.0, browser_s: float | None = BROWSER_WINDOW_S, viewer_steps: tuple[int, ...] = VIEWER_STEPS
) -> dict[str, Any]:
    """Every figure of ``trackside bench stream`` (see the module docstring); about a minute and a half."""
    costs = measure_frame_costs()
    if not Path("/usr/bin/chromium").exists():
        browser_s = None
    live = asyncio.run(_stream_benchmark(window_s, browser_s, viewer_steps))
    return {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2), **costs, **live}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--window", type=float, default=5.0, help="seconds measured per viewer count")
    parser.add_argument(
        "--browser-window", type=float, default=BROWSER_WINDOW_S, help="seconds Chromium watches for glass-to-glass"
    )
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium glass-to-glass part")
    args = parser.parse_args()
    result = run_stream_bench(args.window, None if args.no_browser else args.browser_window)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
