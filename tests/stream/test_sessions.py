"""WHEP sessions release everything: 500 joins and leaves, abandoned offers, ICE servers from settings."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator

import pytest
from aiortc import RTCPeerConnection

from race_server.overlay import BroadcastState
from race_server.settings import SettingsError, load_settings
from race_server.stream.encoder import EncoderConfig
from race_server.stream.race_stream import RaceStream
from race_server.stream.whep import IceServer, WhepHub, parse_ice_servers
from tests.stream.viewers import connect

SMALL = EncoderConfig(race_id=1, route_id="reinvent_base", width=320, height=180, fps=15, bitrate=300_000, gop=15)


@pytest.fixture
async def stream() -> AsyncIterator[RaceStream]:
    race_stream = RaceStream(SMALL)
    await race_stream.start()
    race_stream.show(BroadcastState(phase="racing", racer_name="Ada", x=0.0, y=0.0))
    try:
        yield race_stream
    finally:
        await race_stream.close()


def resources() -> dict[str, int]:
    gc.collect()
    with open("/proc/self/statm") as statm:
        rss_pages = int(statm.read().split()[1])
    return {
        "tasks": len(asyncio.all_tasks()),
        "fds": len(os.listdir("/proc/self/fd")),
        "rss_mb": rss_pages * os.sysconf("SC_PAGE_SIZE") // 2**20,
    }


async def offer_sdp() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


@pytest.mark.slow
async def test_500_joins_and_leaves_leave_nothing_behind(stream: RaceStream) -> None:
    hub = WhepHub()

    async def join_and_leave(index: int) -> None:
        if index % 10 == 0:  # every tenth viewer connects and watches a frame before leaving
            ids: list[str] = []

            async def answer(sdp: str) -> str:
                session_id, answer_sdp = await hub.open(stream, sdp)
                ids.append(session_id)
                return answer_sdp

            viewer = await connect(answer)
            await viewer.read(1)
            await viewer.close()
            await hub.close(ids[0])
        else:  # the rest leave before connecting (a closed tab, a reload)
            pc, sdp = await offer_sdp()
            session_id, _ = await hub.open(stream, sdp)
            await pc.close()
            assert await hub.close(session_id)
            assert not await hub.close(session_id)  # a second DELETE finds nothing

    for index in range(50):  # warm-up: codecs, TLS contexts and the allocator reach their steady state
        await join_and_leave(index)
    baseline = resources()
    for batch in range(45):  # 450 more, ten at a time
        await asyncio.gather(*(join_and_leave(batch * 10 + k) for k in range(10)))
        assert len(hub.sessions) == 0 and not stream.viewers
    after = resources()
    assert after["tasks"] <= baseline["tasks"] + 5, (baseline, after)
    assert after["fds"] <= baseline["fds"] + 10, (baseline, after)
    assert after["rss_mb"] <= baseline["rss_mb"] + 80, (baseline, after)


async def test_an_abandoned_offer_is_released(stream: RaceStream) -> None:
    hub = WhepHub(connect_timeout_s=1.0)
    pc, sdp = await offer_sdp()
    try:
        session_id, _ = await hub.open(stream, sdp)  # the viewer never uses the answer
        session = hub.sessions[session_id]
        ended = asyncio.Event()
        session.track.on("ended", ended.set)
        assert len(stream.viewers) == 1
        await asyncio.wait_for(ended.wait(), 10.0)
        assert session_id not in hub.sessions and not stream.viewers
        assert session.pc.connectionState == "closed"
    finally:
        await pc.close()
        await hub.close_all()


async def test_no_viewer_once_the_race_video_stops() -> None:
    race_stream = RaceStream(SMALL)
    await race_stream.start()
    hub = WhepHub()
    pc, sdp = await offer_sdp()
    try:
        session_id, _ = await hub.open(race_stream, sdp)
        session = hub.sessions[session_id]
        ended = asyncio.Event()
        session.track.on("ended", ended.set)
        await race_stream.close()  # the simulator (and so the video) stopped
        await asyncio.wait_for(ended.wait(), 10.0)
        assert session_id not in hub.sessions
        other, other_sdp = await offer_sdp()
        with pytest.raises(ValueError, match="no live video"):
            await hub.open(race_stream, other_sdp)
        await other.close()
    finally:
        await pc.close()
        await hub.close_all()
        await race_stream.close()


def test_ice_servers_come_from_settings(tmp_path: object) -> None:
    env = {
        "TRACKSIDE_DATA_DIR": str(tmp_path),
        "TRACKSIDE_ICE_SERVERS": "stun:stun.example.org:3478, turn:ann:s3cret@turn.example.org:3478",
    }
    video = load_settings(env).video
    assert parse_ice_servers(video.ice_servers) == [
        IceServer("stun:stun.example.org:3478"),
        IceServer("turn:turn.example.org:3478", "ann", "s3cret"),
    ]
    with pytest.raises(SettingsError, match="TRACKSIDE_ICE_SERVERS"):
        load_settings({**env, "TRACKSIDE_ICE_SERVERS": "http://example.org"})
    with pytest.raises(SettingsError, match="TRACKSIDE_VIDEO_CODEC"):
        load_settings({**env, "TRACKSIDE_VIDEO_CODEC": "av1"})
    assert load_settings({**env, "TRACKSIDE_VIDEO_SIZE": "1920x1080"}).video.height == 1080
