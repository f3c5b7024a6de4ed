"""WHEP viewer sessions: an SDP offer in, an answer out, one aiortc peer per viewer, cleaned up always.

A session ends when its viewer DELETEs it, when ICE fails or the peer closes, when it stays
disconnected for `DISCONNECT_GRACE_S`, when it never connects within `CONNECT_TIMEOUT_S` (an
abandoned offer), or when its race's video stops. Ending releases the peer (its sockets and
tasks), the viewer's track and its place in the race's fan-out.

The answer carries every ICE candidate (aiortc gathers before answering), so no trickle PATCH is
needed. The codec is the race's encoder's (VP8 unless set to H.264): the peer offers only that one,
with retransmission; a PLI / FIR from the viewer asks the encoder for a keyframe.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from race_server.stream.codec import MIME
from race_server.stream.race_stream import RaceStream, StreamError, ViewerTrack

log = logging.getLogger("trackside.stream")
CONNECT_TIMEOUT_S = 20.0
DISCONNECT_GRACE_S = 5.0
MAX_OFFER_BYTES = 64 * 1024


class WhepError(ValueError):
    """The offer cannot be answered; ``status`` and ``code`` are for the HTTP error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class IceServer:
    urls: str
    username: str | None = None
    credential: str | None = None


@dataclass(eq=False)
class WhepSession:
    id: str
    race_id: int
    pc: RTCPeerConnection
    track: ViewerTrack
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    closed: bool = False


class WhepHub:
    """Every WHEP session of this server process."""

    def __init__(
        self,
        ice_servers: Sequence[IceServer] = (),
        *,
        max_sessions: int = 500,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.ice_servers = list(ice_servers)
        self.max_sessions = max_sessions
        self.connect_timeout_s = connect_timeout_s
        self.sessions: dict[str, WhepSession] = {}

    def _configuration(self) -> RTCConfiguration:
        servers = [RTCIceServer(urls=s.urls, username=s.username, credential=s.credential) for s in self.ice_servers]
        return RTCConfiguration(iceServers=servers)

    async def open(self, stream: RaceStream, offer_sdp: str) -> tuple[str, str]:
        """Answer a viewer's offer: returns (session id, answer SDP)."""
        if len(self.sessions) >= self.max_sessions:
            raise WhepError(503, "too_many_viewers", f"this server already serves {self.max_sessions} video viewers")
        if not stream.alive:
            raise WhepError(404, "no_video", f"race {stream.race_id} has no live video right now")
        if "m=video" not in offer_sdp:
            raise WhepError(400, "bad_offer", "the SDP offer has no video section (m=video)")
        pc = RTCPeerConnection(self._configuration())
        track = ViewerTrack(stream)
        session = WhepSession(secrets.token_urlsafe(16), stream.race_id, pc, track)
        try:
            # the sending transceiver exists before the offer is applied, so the offer's video section
            # binds to it and negotiates only the encoder's codec (preferences set later are ignored)
            transceiver = pc.addTransceiver(track, direction="sendonly")
            mime = MIME[stream.config.codec].lower()
            codecs = [
                c
                for c in RTCRtpSender.getCapabilities("video").codecs
                if c.mimeType.lower() == mime or c.mimeType.lower() == "video/rtx"
            ]
            transceiver.setCodecPreferences(codecs)
            # aiortc would force a keyframe on its own (absent) encoder; ours is in another process
            transceiver.sender._send_keyframe = stream.request_keyframe  # type: ignore[method-assign]
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            if transceiver.mid is None:
                raise WhepError(400, "bad_offer", "the SDP offer has no video section (m=video)")
            answer = await pc.createAnswer()
            if answer is None:
                raise WhepError(400, "bad_offer", "no answer could be made to this offer")
            await pc.setLocalDescription(answer)
            stream.attach(track)
        except WhepError:
            await self._release(session)
            raise
        except StreamError as error:
            await self._release(session)
            raise WhepError(404, "no_video", str(error)) from None
        except Exception as error:  # aiortc's SDP parser and negotiation (no common codec, bad fields)
            await self._release(session)
            raise WhepError(400, "bad_offer", f"the SDP offer cannot be used: {error}") from None
        self.sessions[session.id] = session
        pc.on("connectionstatechange", lambda: self._on_state(session))
        track.on("ended", lambda: self._spawn(session, self.close(session.id)))
        self._spawn(session, self._watch_connect(session))
        local = pc.localDescription
        return session.id, local.sdp

    def _spawn(self, session: WhepSession, coro: Coroutine[Any, Any, Any]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        session.tasks.add(task)
        task.add_done_callback(session.tasks.discard)

    def _on_state(self, session: WhepSession) -> None:
        state = session.pc.connectionState
        if state in ("failed", "closed"):
            self._spawn(session, self.close(session.id))
        elif state == "disconnected":
            self._spawn(session, self._close_if_still_disconnected(session))

    async def _close_if_still_disconnected(self, session: WhepSession) -> None:
        await asyncio.sleep(DISCONNECT_GRACE_S)
        if session.pc.connectionState == "disconnected":
            await self.close(session.id)

    async def _watch_connect(self, session: WhepSession) -> None:
        await asyncio.sleep(self.connect_timeout_s)
        if session.pc.connectionState != "connected":
            await self.close(session.id)

    async def close(self, session_id: str) -> bool:
        """End a session; False if there is none by that id (already ended)."""
        session = self.sessions.pop(session_id, None)
        if session is None:
            return False
        await self._release(session)
        return True

    async def _release(self, session: WhepSession) -> None:
        if session.closed:
            return
        session.closed = True
        session.track.stop()
        await session.pc.close()
        current = asyncio.current_task()
        for task in list(session.tasks):
            if task is not current:
                task.cancel()

    async def close_race(self, race_id: int) -> None:
        for session_id in [s.id for s in self.sessions.values() if s.race_id == race_id]:
            await self.close(session_id)

    async def close_all(self) -> None:
        for session_id in list(self.sessions):
            await self.close(session_id)
        await asyncio.sleep(0)


def parse_ice_servers(raw: str) -> list[IceServer]:
    """``TRACKSIDE_ICE_SERVERS``: comma-separated URLs, each optionally ``user:credential@`` prefixed
    after the scheme, e.g. ``stun:stun.example.org:3478,turn:alice:s3cret@turn.example.org:3478``."""
    servers = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        scheme, _, rest = item.partition(":")
        if scheme not in ("stun", "stuns", "turn", "turns") or not rest:
            raise ValueError(f"ICE server {item!r}: expected stun:, stuns:, turn: or turns: followed by host[:port]")
        username = credential = None
        if "@" in rest:
            auth, _, rest = rest.rpartition("@")
            username, _, credential = auth.partition(":")
        servers.append(IceServer(f"{scheme}:{rest}", username or None, credential or None))
    return servers
