"""H.264 instead of VP8: viewers receive it over WebRTC and runs are recorded as Matroska."""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
import numpy as np

from race_server.overlay import BroadcastState
from race_server.stream import probe
from race_server.stream.encoder import EncoderConfig
from race_server.stream.race_stream import RaceStream
from race_server.stream.whep import WhepHub
from tests.stream.viewers import connect

H264 = EncoderConfig(race_id=1, route_id="reinvent_base", width=320, height=180, fps=15, codec="h264", gop=15)


async def test_h264_viewer_and_recording(tmp_path: Path) -> None:
    stream = RaceStream(H264)
    await stream.start()
    hub = WhepHub()
    try:
        stream.show(BroadcastState(phase="racing", racer_name="Ada", x=0.0, y=0.0))
        path = tmp_path / "run-1.mkv"
        stream.start_recording(path)

        async def answer(sdp: str) -> str:
            _, answer_sdp = await hub.open(stream, sdp)
            assert "H264" in answer_sdp and "VP8" not in answer_sdp  # only the encoder's codec is offered
            return answer_sdp

        viewer = await connect(answer)
        try:
            await viewer.read(10)
            assert viewer.widths == {320}
        finally:
            await viewer.close()
        finished = await asyncio.wait_for(stream.stop_recording(), 10)
        assert finished["frames"] > 0, finished
        with av.open(str(path), mode="r") as container:
            assert container.streams.video[0].codec_context.name == "h264"
            frames: list[np.ndarray] = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        assert frames and all(probe.read(f) is not None for f in frames)
    finally:
        await hub.close_all()
        await stream.close()
