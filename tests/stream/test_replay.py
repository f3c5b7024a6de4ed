"""After the checkered flag the picture holds the flag, then replays the end of the run with a REPLAY badge."""

from __future__ import annotations

import asyncio

import av
import numpy as np

from race_server.overlay import BroadcastState, Overlay
from race_server.overlay.compose import FLAG_DARK, FLAG_LIGHT, REPLAY_RED, Box2
from race_server.sim.tracks import load_track
from race_server.stream.encoder import FLAG_HOLD_S, EncoderConfig
from race_server.stream.race_stream import RaceStream, ViewerTrack

CONFIG = EncoderConfig(race_id=1, route_id="reinvent_base", width=640, height=360, fps=15, bitrate=800_000, gop=15)


def count(image: np.ndarray, box: Box2, rgb: tuple[int, int, int], tol: int) -> int:
    region = image[box.y : box.y + box.h, box.x : box.x + box.w].astype(int)
    return int(np.all(np.abs(region - np.array(rgb)) <= tol, axis=-1).sum())


async def test_checkered_flag_then_replay_with_badge() -> None:
    track = load_track("reinvent_base")
    layout = Overlay(track, CONFIG.width, CONFIG.height)
    stream = RaceStream(CONFIG)
    await stream.start()
    viewer = ViewerTrack(stream)
    stream.attach(viewer)
    decoder = av.CodecContext.create("libvpx", "r")
    try:
        stream.apply({"type": "run_started", "racer_id": 1, "run_id": 1, "slot_s": 4.0})
        for step in range(60):  # four seconds of a run at 15 Hz, as the simulator reports it
            x, y, heading = track.pose_at(0.1 * step)
            stream.apply({"type": "telemetry", "racer_id": 1, "run_id": 1, "t": step / 15, "x": x, "y": y,
                          "heading": float(np.degrees(heading)), "speed": 1.5, "lap": 1,
                          "lap_time_ms": step * 66, "time_remaining_ms": 4000 - step * 66})  # fmt: skip
        stream.apply({"type": "run_end", "racer_id": 1, "run_id": 1, "reason": "time_up", "t": 4.0})
        state = stream.apply({"type": "checkered", "racer_id": 1, "run_id": 1, "replay_s": FLAG_HOLD_S + 2.0})
        assert isinstance(state, BroadcastState) and state.phase == "finished"
        phases: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20.0
        while loop.time() < deadline and (not phases or phases[-1] != "flag" or "replay" not in phases):
            packet = await asyncio.wait_for(viewer.recv(), 5.0)
            for frame in decoder.decode(packet):
                image = frame.to_ndarray(format="rgb24")
                if count(image, layout.badge, REPLAY_RED, 40) > layout.badge.w * layout.badge.h // 3:
                    seen = "replay"
                elif count(image, layout.flag, FLAG_DARK, 40) > 200 and count(image, layout.flag, FLAG_LIGHT, 40) > 200:
                    seen = "flag"
                else:
                    seen = "other"
                if not phases or phases[-1] != seen:
                    phases.append(seen)
        # the flag first, then the replay, then back to the flag until the queue moves on
        assert "flag" in phases, (phases, stream.states_dropped)
        assert phases[phases.index("flag") :][:3] == ["flag", "replay", "flag"], phases
    finally:
        viewer.stop()
        await stream.close()
