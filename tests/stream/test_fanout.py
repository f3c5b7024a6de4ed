"""One encode per frame for any number of viewers; keyframes for joiners; slow viewers only hurt themselves."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc.codecs.vpx import Vp8Encoder

from race_server.overlay import BroadcastState
from race_server.sim.tracks import load_track
from race_server.stream.encoder import EncoderConfig
from race_server.stream.race_stream import BACKLOG, RaceStream, ViewerTrack
from race_server.stream.whep import WhepHub
from tests.stream.viewers import Viewer, connect

SMALL = EncoderConfig(race_id=1, route_id="reinvent_base", width=320, height=180, fps=15, bitrate=400_000, gop=15)


def racing_state() -> BroadcastState:
    x, y, yaw = load_track("reinvent_base").pose_at(2.0)
    return BroadcastState(phase="racing", racer_name="Ada", t=5.0, x=x, y=y, yaw=yaw, time_remaining_ms=60_000)


@pytest.fixture
async def stream() -> AsyncIterator[RaceStream]:
    race_stream = RaceStream(SMALL)
    await race_stream.start()
    race_stream.show(racing_state())
    try:
        yield race_stream
    finally:
        await race_stream.close()
    assert not race_stream.viewers


def answerer(hub: WhepHub, stream: RaceStream) -> Any:
    async def answer(sdp: str) -> str:
        _, answer_sdp = await hub.open(stream, sdp)
        return answer_sdp

    return answer


@pytest.mark.slow
async def test_fifty_viewers_each_receive_frames_from_one_encode(
    stream: RaceStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    encodes_here = 0
    real_encode = Vp8Encoder.encode

    def counting_encode(self: Vp8Encoder, *args: Any, **kwargs: Any) -> Any:
        nonlocal encodes_here
        encodes_here += 1
        return real_encode(self, *args, **kwargs)

    monkeypatch.setattr(Vp8Encoder, "encode", counting_encode)
    hub = WhepHub()
    viewers: list[Viewer] = []
    try:
        viewers = list(await asyncio.gather(*(connect(answerer(hub, stream)) for _ in range(50))))
        assert len(stream.viewers) == 50 and len(hub.sessions) == 50
        encoded_before, started = stream.frames_encoded, time.monotonic()
        await asyncio.gather(*(viewer.read(15, timeout=60.0) for viewer in viewers))
        elapsed = time.monotonic() - started
        encoded = stream.frames_encoded - encoded_before
        assert all(viewer.frames == 15 and viewer.widths == {320} for viewer in viewers)
        # the encoder process ran once per frame: at most the frame rate allows, not 50 times that
        assert 0 < encoded <= elapsed * SMALL.fps * 1.1 + 3
        # every packet the encoder sent is the one every viewer was sent, and no viewer's sender encoded
        assert stream.frames_received == stream.frames_encoded
        assert encodes_here == 0
    finally:
        await asyncio.gather(*(viewer.close() for viewer in viewers))
        await hub.close_all()
    assert not hub.sessions and not stream.viewers


async def test_a_new_viewer_gets_a_keyframe_within_a_second(stream: RaceStream) -> None:
    hub = WhepHub()
    first = await connect(answerer(hub, stream))
    try:
        await first.read(5)
        second = await connect(answerer(hub, stream))
        try:
            # the sender starts once the peer is connected; its first recv asks for the keyframe
            await second.read(1)
            assert second.first_frame_s is not None and second.first_frame_s < 1.0
            await first.read(3)  # the first viewer kept going meanwhile
        finally:
            await second.close()
    finally:
        await first.close()
        await hub.close_all()


async def test_a_slow_viewer_drops_frames_and_never_delays_the_others(stream: RaceStream) -> None:
    fast, slow = ViewerTrack(stream), ViewerTrack(stream)
    stream.attach(fast)
    stream.attach(slow)
    try:
        # both start on the same keyframe; then the slow viewer stalls
        await asyncio.wait_for(asyncio.gather(fast.recv(), slow.recv()), 10.0)
        fast_dropped, received_before = fast.dropped, stream.frames_received
        for _ in range(3 * SMALL.fps):  # three seconds of frames
            await asyncio.wait_for(fast.recv(), 5.0)
            assert slow.backlog <= BACKLOG  # bounded: nothing piles up for the stalled viewer
        assert stream.frames_received - received_before >= 3 * SMALL.fps - BACKLOG
        assert slow.dropped > SMALL.fps
        assert fast.dropped == fast_dropped
    finally:
        fast.stop()
        slow.stop()
    assert not stream.viewers


async def test_a_stuck_encoder_never_blocks_the_server(stream: RaceStream) -> None:
    assert stream.pid is not None
    os.kill(stream.pid, signal.SIGSTOP)  # the encoder stops reading its pipe
    try:
        started = time.monotonic()
        for step in range(3000):  # minutes of 15 Hz states, far more than the pipe holds
            stream.apply({"type": "telemetry", "racer_id": 1, "run_id": 1, "t": step / 15, "x": 0.0, "y": 0.0})
        assert time.monotonic() - started < 5.0
        assert stream.states_dropped > 0  # the newest state wins; nothing waited
        last = stream.apply({"type": "telemetry", "racer_id": 1, "run_id": 1, "t": 999.0, "x": 1.0, "y": 2.0})
    finally:
        os.kill(stream.pid, signal.SIGCONT)
    assert last.t == 999.0
    track = ViewerTrack(stream)
    stream.attach(track)
    try:
        await asyncio.wait_for(track.recv(), 10.0)  # and it carries on once it runs again
    finally:
        track.stop()
