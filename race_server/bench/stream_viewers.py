"""Load for the stream benchmark: many aiortc viewer peers in their own process, counting frames.

The viewers run apart from the server under test, so the server's CPU figure holds only its own
work. They do not decode (a counting stand-in replaces aiortc's decoder here, in this process
only): a hundred 720p decoders would measure the load generator, not the server. Driven over a
pipe: ``("add", n)`` answers with n SDP offers, ``("answers", [sdp])`` connects them,
``("frames", None)`` reports frames received per viewer, ``("close", None)`` ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from multiprocessing.connection import Connection
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription

from race_server.lifeline import bind_to_parent


class _CountingDecoder:
    def __init__(self) -> None:
        self.frames = 0

    def decode(self, encoded_frame: Any) -> list[Any]:
        self.frames += 1
        return []


_COUNTERS: list[_CountingDecoder] = []


def _counting_decoder(codec: Any) -> _CountingDecoder:
    decoder = _CountingDecoder()
    _COUNTERS.append(decoder)
    return decoder


async def _serve(conn: Connection) -> None:
    import aiortc.rtcrtpreceiver as receiver

    receiver.get_decoder = _counting_decoder  # type: ignore[attr-defined,assignment]
    loop = asyncio.get_running_loop()
    peers: list[RTCPeerConnection] = []
    pending: list[RTCPeerConnection] = []
    readable = asyncio.Event()
    loop.add_reader(conn.fileno(), readable.set)
    try:
        while True:
            while not conn.poll():
                readable.clear()
                await readable.wait()
            op, payload = conn.recv()
            if op == "add":
                pending = [RTCPeerConnection() for _ in range(int(payload))]
                offers = []
                for pc in pending:
                    pc.addTransceiver("video", direction="recvonly")
                    await pc.setLocalDescription(await pc.createOffer())
                    offers.append(pc.localDescription.sdp)
                conn.send(offers)
            elif op == "answers":
                for pc, sdp in zip(pending, payload, strict=True):
                    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
                peers += pending
                pending = []
                conn.send(len(peers))
            elif op == "frames":
                conn.send([d.frames for d in _COUNTERS])
            elif op == "close":
                break
    finally:
        loop.remove_reader(conn.fileno())
        for pc in peers + pending:
            with contextlib.suppress(Exception):
                await pc.close()
        conn.send("closed")


LOAD_NICENESS = 10


def viewers_main(conn: Connection, parent_pid: int) -> None:
    """Process entry point; it dies with the benchmark, however that dies."""
    bind_to_parent(parent_pid)
    # The audience stands in for viewers on other machines: on this one it must not take the CPU
    # from the server it measures (an unniced load generator would be measuring itself).
    with contextlib.suppress(OSError):
        os.nice(LOAD_NICENESS)
    with contextlib.suppress(EOFError, BrokenPipeError, KeyboardInterrupt):
        asyncio.run(_serve(conn))
