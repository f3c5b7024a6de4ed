"""Recording a classic-race evaluation after the fact, from its 15 Hz telemetry and laps.

An evaluation runs faster than real time in the evaluator's niced worker and nobody watches it
live, so there are no live packets to keep: its telemetry is drawn once, on the simulator's
clock, with the same camera and overlay as a LIVE run (pose interpolated between the 15 Hz
states), encoded once and muxed into the same ``recordings/race-<id>/run-<run>.webm`` the
leaderboard's video link serves. Called in the evaluator's worker process, after the result is
stored, so neither the server nor the result waits for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from race_server.overlay import BroadcastFeed, Overlay
from race_server.sim.broadcast import BroadcastRenderer, Pose, View
from race_server.sim.tracks import load_track
from race_server.stream.codec import CLOCK_RATE, Codec, FrameEncoder
from race_server.stream.recorder import Recorder


def _pose(event: Mapping[str, Any]) -> Pose | None:
    x, y, heading = event.get("x"), event.get("y"), event.get("heading")
    if x is None or y is None or heading is None:
        return None
    return Pose(float(x), float(y), math.radians(float(heading)))


def _between(a: Pose, b: Pose, f: float) -> Pose:
    turn = math.remainder(b.yaw - a.yaw, math.tau)
    return Pose(a.x + f * (b.x - a.x), a.y + f * (b.y - a.y), a.yaw + f * turn)


def record_evaluation(
    telemetry: Sequence[Mapping[str, Any]],
    laps: Sequence[Mapping[str, Any]],
    route_id: str,
    reverse: bool,
    path: str,
    *,
    racer_name: str = "",
    codec: str = "vp8",
    width: int = 1280,
    height: int = 720,
    fps: int = 30,
    bitrate: int = 2_500_000,
    view: str = "chase",
) -> dict[str, Any]:
    """Draw and encode the evaluation; returns {path, frames, seconds}. ``codec`` and ``view`` are
    checked by the encoder and the renderer (ValueError)."""
    camera = cast(View, view)
    track = load_track(route_id, reverse)
    renderer = BroadcastRenderer(track, width, height)
    overlay = Overlay(track, width, height)
    encoder = FrameEncoder(cast(Codec, codec), width, height, fps, bitrate, gop=2 * fps)
    recorder = Recorder(Path(path), cast(Codec, codec), width, height, fps)
    feed = BroadcastFeed()
    states = sorted((e for e in telemetry if _pose(e) is not None), key=lambda e: float(e["t"]))
    timed = sorted(laps, key=lambda e: float(e.get("t", 0.0)))
    if states:
        first = states[0]
        feed.names[int(first.get("racer_id", 0))] = racer_name
        feed.apply({"type": "run_started", "racer_id": first.get("racer_id"), "slot_s": 0.001})
    lap_index = 0
    colours: list[Any] = []
    frame_index = 0
    end_t = float(states[-1]["t"]) if states else 0.0
    k = 0
    try:
        while states and frame_index / fps <= end_t:
            t = frame_index / fps
            while k + 1 < len(states) and float(states[k + 1]["t"]) <= t:
                k += 1
            event = states[k]
            if event.get("sector_colours") != colours:
                colours = list(event.get("sector_colours") or [])
                for sector, colour in enumerate(colours):
                    feed.apply({"type": "sector", "sector": sector, "colour": colour})
            while lap_index < len(timed) and float(timed[lap_index].get("t", 0.0)) <= t:
                feed.apply(timed[lap_index])
                lap_index += 1
            state = feed.apply(event)
            pose = _pose(event)
            if k + 1 < len(states):
                t0, t1 = float(event["t"]), float(states[k + 1]["t"])
                following = _pose(states[k + 1])
                if pose is not None and following is not None and t1 > t0:
                    pose = _between(pose, following, min(max((t - t0) / (t1 - t0), 0.0), 1.0))
            image = renderer.render(camera, pose, state.objects)
            if pose is not None:
                state = replace(state, x=pose.x, y=pose.y, yaw=pose.yaw)
            overlay.draw(state, image, track_map=camera != "topdown")
            for packet in encoder.encode(image, round(t * CLOCK_RATE), force_keyframe=frame_index == 0):
                recorder.write(packet)
            frame_index += 1
    finally:
        frames = recorder.close()
    return {"path": path, "frames": frames, "seconds": round(end_t, 3)}
