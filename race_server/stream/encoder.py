"""The encoder process: one per race, rendering, composing, encoding and recording at 30 fps.

It runs apart from the server (whose event loop serves every viewer) and from the simulator (whose
15 Hz clock must not jitter): the server sends it `BroadcastState`s as they arrive, and it draws
frames on its own clock — the car's pose interpolated between states (`PoseInterpolator`), the
camera view, the overlay, the latency probe — encodes each frame once and sends the packet back.
Frames are dropped, never queued: if a frame is late the clock skips ahead. Idle (no viewer, no
recording) it draws nothing.

A race on a physical track (``source="car"``) shows the car's own camera instead of a rendered
view (`overlay.car_camera`), under the same overlay; its replay plays the camera's frames back.

Messages are ``(op, payload)`` tuples. Server → encoder: state, view, active, keyframe,
record (a path to start, None to stop), replay (seconds), camera (a grey image, car source only),
close. Encoder → server: ready, packet (`Packet`), recorded ({path, frames} or {error}), fatal.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
import traceback
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from race_server.lifeline import bind_to_parent
from race_server.overlay import BroadcastState, Overlay
from race_server.overlay.car_camera import CarCamera
from race_server.sim.broadcast import VIEWS, BroadcastRenderer, Pose, PoseInterpolator, View
from race_server.sim.tracks import load_track
from race_server.stream import probe
from race_server.stream.codec import CLOCK_RATE, Codec, Encoded, FrameEncoder
from race_server.stream.recorder import Recorder

FLAG_HOLD_S = 2.0  # the checkered flag shows this long before the replay rolls
HISTORY_LIMIT = 15 * 60 * 12  # states kept for the replay: a 12-minute slot at 15 Hz
KEYFRAME_MIN_GAP_S = 0.5  # forced keyframes are expensive: requests closer than this are merged
CAMERA_HISTORY = 15 * 60  # the car's frames kept for the replay: its longest (60 s) at 15 fps
Source = Literal["simulator", "car"]


@dataclass(frozen=True)
class EncoderConfig:
    race_id: int
    route_id: str
    reverse: bool = False
    n_sectors: int = 3
    width: int = 1280
    height: int = 720
    fps: int = 30
    codec: Codec = "vp8"
    bitrate: int = 2_500_000
    gop: int = 60  # frames between periodic keyframes; joiners ask for one and get it within a frame or two
    view: View = "chase"
    probe: bool = True
    source: Source = "simulator"


@dataclass(frozen=True)
class Packet:
    data: bytes
    pts: int  # 90 kHz
    keyframe: bool
    captured: float  # Unix seconds when the frame was drawn
    index: int  # frames encoded so far, this one included


class _Replay:
    """Plays a window of the run's recorded states back on the display clock."""

    def __init__(self, history: list[tuple[float, BroadcastState]], seconds: float, started: float) -> None:
        end = history[-1][0]
        self.history = history
        self.times = [t for t, _ in history]
        self.start_t = max(end - seconds, self.times[0])
        self.end_t = end
        self.started = started

    def at(self, now: float) -> tuple[BroadcastState, Pose | None] | None:
        t = self.start_t + (now - self.started)
        if t > self.end_t:
            return None
        i = max(bisect_right(self.times, t) - 1, 0)
        t0, s0 = self.history[i]
        state = replace(s0, phase="replay")
        if i + 1 >= len(self.history) or s0.x is None or s0.y is None:
            return state, (Pose(s0.x, s0.y, s0.yaw) if s0.x is not None and s0.y is not None else None)
        t1, s1 = self.history[i + 1]
        if s1.x is None or s1.y is None or t1 <= t0:
            return state, Pose(s0.x, s0.y, s0.yaw)
        a = min(max((t - t0) / (t1 - t0), 0.0), 1.0)
        yaw = s0.yaw + a * math.remainder(s1.yaw - s0.yaw, math.tau)
        return state, Pose(s0.x + a * (s1.x - s0.x), s0.y + a * (s1.y - s0.y), yaw)


class _CameraReplay:
    """The car's last ``seconds`` of camera frames, played back on the display clock."""

    def __init__(
        self, frames: list[tuple[float, npt.NDArray[np.uint8]]], end: float, seconds: float, started: float
    ) -> None:
        # the run's last seconds, not the car idling on the line after its flag
        kept = [(t, grey) for t, grey in frames if end - seconds <= t <= end] or frames[-1:]
        self.times = [t for t, _ in kept]
        self.frames = [grey for _, grey in kept]
        self.started = started

    def at(self, now: float) -> npt.NDArray[np.uint8]:
        t = self.times[0] + (now - self.started)
        return self.frames[max(bisect_right(self.times, t) - 1, 0)]


class _Encoder:
    def __init__(self, conn: Connection, config: EncoderConfig) -> None:
        self.conn = conn
        self.config = config
        track = load_track(config.route_id, config.reverse, config.n_sectors)
        self.renderer = BroadcastRenderer(track, config.width, config.height)
        self.overlay = Overlay(track, config.width, config.height)
        self.encoder = FrameEncoder(config.codec, config.width, config.height, config.fps, config.bitrate, config.gop)
        self.interp = PoseInterpolator()
        self.state = BroadcastState()
        self.view: View = config.view
        self.active = False
        self.closing = False
        self.want_keyframe = True
        self.last_keyframe = 0.0
        self.recorder: Recorder | None = None
        self.history: list[tuple[float, BroadcastState]] = []
        self.replay: _Replay | None = None
        self.replay_due: tuple[float, float] | None = None  # (when, seconds)
        self.origin = time.monotonic()
        self.car_camera = CarCamera(config.width, config.height) if config.source == "car" else None
        self.camera: tuple[float, npt.NDArray[np.uint8]] | None = None  # (arrived, grey)
        self.camera_history: deque[tuple[float, npt.NDArray[np.uint8]]] = deque(maxlen=CAMERA_HISTORY)
        self.camera_replay: _CameraReplay | None = None
        self.raced_until = 0.0  # when the last racing state arrived: the camera replay ends there

    # --- commands ----------------------------------------------------------------------------
    def handle(self, op: str, payload: Any) -> None:
        if op == "state":
            self._on_state(payload)
        elif op == "view":
            if payload in VIEWS:
                self.view = payload
        elif op == "active":
            self.active = bool(payload)
        elif op == "keyframe":
            self.want_keyframe = True
        elif op == "record":
            self._record(payload)
        elif op == "replay":
            seconds = float(payload)
            if seconds > 0 and self.history:
                self.replay_due = (time.monotonic() + FLAG_HOLD_S, seconds)
        elif op == "camera":
            if self.car_camera is not None:
                self.camera = (time.monotonic(), np.asarray(payload, dtype=np.uint8))
                self.camera_history.append(self.camera)
        elif op == "close":
            self.closing = True

    def _on_state(self, state: BroadcastState) -> None:
        previous = self.state
        self.state = state
        if state.phase == "countdown" and previous.phase != "countdown":
            self.history.clear()
            self.interp.clear()
            self.replay = self.replay_due = self.camera_replay = None
        if state.phase != "racing":
            return
        self.raced_until = time.monotonic()
        if state.x is not None and state.y is not None:
            self.interp.push(state.t, Pose(state.x, state.y, state.yaw), time.monotonic())
        elif self.car_camera is None:
            return  # a simulator state without a pose has nothing to replay
        if not self.history or state.t > self.history[-1][0]:
            self.history.append((state.t, state))
            del self.history[:-HISTORY_LIMIT]

    def _record(self, path: str | None) -> None:
        if self.recorder is not None:
            recorder, self.recorder = self.recorder, None
            try:
                frames = recorder.close()
                self.conn.send(("recorded", {"path": str(recorder.path), "frames": frames}))
            except Exception as error:
                self.conn.send(("recorded", {"path": str(recorder.path), "error": f"{type(error).__name__}: {error}"}))
        elif path is None:
            self.conn.send(("recorded", {"path": None, "frames": 0}))
        if path is not None:
            c = self.config
            try:
                self.recorder = Recorder(Path(path), c.codec, c.width, c.height, c.fps)
                self.want_keyframe = True
            except Exception as error:
                self.conn.send(("recorded", {"path": path, "error": f"{type(error).__name__}: {error}"}))

    # --- frames ------------------------------------------------------------------------------
    def frame(self, now: float) -> None:
        state, pose = self._scene(now)
        if self.car_camera is not None:
            image = self.car_camera.draw(*self._camera_at(now))
        else:
            image = self.renderer.render(self.view, pose, state.objects)
        if pose is not None:
            state = replace(state, x=pose.x, y=pose.y, yaw=pose.yaw)
        self.overlay.draw(state, image, track_map=self.car_camera is not None or self.view != "topdown")
        captured = time.time()
        if self.config.probe:
            probe.stamp(image, round(captured * 1000.0))
        force = self.want_keyframe and now - self.last_keyframe >= KEYFRAME_MIN_GAP_S
        pts = round((now - self.origin) * CLOCK_RATE)
        for encoded in self.encoder.encode(image, pts, force):
            if encoded.keyframe:
                self.last_keyframe = now
                self.want_keyframe = False
            self._emit(encoded, captured)

    def _scene(self, now: float) -> tuple[BroadcastState, Pose | None]:
        if self.replay_due is not None and now >= self.replay_due[0] and self.state.phase in ("finished", "idle"):
            self.replay = _Replay(self.history, self.replay_due[1] - FLAG_HOLD_S, now)
            if self.car_camera is not None and self.camera_history:
                seconds = self.replay_due[1] - FLAG_HOLD_S
                self.camera_replay = _CameraReplay(list(self.camera_history), self.raced_until, seconds, now)
            self.replay_due = None
        if self.replay is not None:
            scene = self.replay.at(now)
            if scene is not None and self.state.phase in ("finished", "idle", "replay"):
                return scene
            self.replay = self.camera_replay = None
        state = self.state
        if state.phase in ("racing", "finished"):
            return state, self.interp.at(now)
        if state.phase == "countdown" and state.x is not None and state.y is not None:
            return state, Pose(state.x, state.y, state.yaw)
        return state, None

    def _camera_at(self, now: float) -> tuple[npt.NDArray[np.uint8] | None, float | None]:
        """The car's image to show and its age: the replay's frame while one plays, else the newest."""
        if self.camera_replay is not None:
            return self.camera_replay.at(now), 0.0
        if self.camera is None:
            return None, None
        arrived, grey = self.camera
        return grey, now - arrived

    def _emit(self, encoded: Encoded, captured: float) -> None:
        if self.recorder is not None:
            try:
                self.recorder.write(encoded)
            except Exception as error:
                recorder, self.recorder = self.recorder, None
                with contextlib.suppress(Exception):
                    recorder.close()
                self.conn.send(("recorded", {"path": str(recorder.path), "error": f"{type(error).__name__}: {error}"}))
        if self.active:
            packet = Packet(encoded.data, encoded.pts, encoded.keyframe, captured, self.encoder.frames)
            self.conn.send(("packet", packet))

    def run(self) -> None:
        dt = 1.0 / self.config.fps
        due = time.monotonic()
        while not self.closing:
            drawing = self.active or self.recorder is not None
            timeout = max(due - time.monotonic(), 0.0) if drawing else None
            if self.conn.poll(timeout):
                op, payload = self.conn.recv()
                self.handle(op, payload)
                continue
            now = time.monotonic()
            if now - due > dt:
                due = now  # late: skip the missed frames rather than queue them
            self.frame(now)
            due += dt
        if self.recorder is not None:
            self._record(None)


ENCODER_NICENESS = 2


def encoder_main(conn: Connection, config: EncoderConfig, parent_pid: int) -> None:
    """Process entry point (spawned by `RaceStream.start`); it dies with the server, however it dies."""
    bind_to_parent(parent_pid)
    # Below the web server that fans out laps and speed control, above training (nice 10): the
    # race clock and the racers' controls come first, a dropped video frame is the lesser harm.
    with contextlib.suppress(OSError):
        os.nice(ENCODER_NICENESS)
    try:
        encoder = _Encoder(conn, config)
    except Exception as error:
        conn.send(("fatal", f"{type(error).__name__}: {error}"))
        conn.close()
        return
    conn.send(("ready", {"codec": config.codec, "width": config.width, "height": config.height}))
    try:
        encoder.run()
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the server went away
    except Exception as error:
        traceback.print_exc(file=sys.stderr)
        with contextlib.suppress(OSError):
            conn.send(("fatal", f"{type(error).__name__}: {error}"))
        sys.exit(1)
    finally:
        with contextlib.suppress(Exception):
            if encoder.recorder is not None:
                encoder._record(None)
        conn.close()
