"""Video settings, read once with the server's settings (``TRACKSIDE_VIDEO_*``, ``TRACKSIDE_ICE_SERVERS``).

Kept apart from the encoder and aiortc so reading settings loads no video library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SIZES = {"1280x720": (1280, 720), "1920x1080": (1920, 1080), "960x540": (960, 540)}
CODEC_NAMES = ("vp8", "h264")
VIEW_NAMES = ("chase", "tv", "topdown")


class VideoSettingsError(ValueError):
    """A video setting is malformed; the message names the variable."""


@dataclass(frozen=True)
class VideoSettings:
    enabled: bool = True
    codec: str = "vp8"
    width: int = 1280
    height: int = 720
    fps: int = 30
    bitrate: int = 2_500_000
    view: str = "chase"
    max_viewers: int = 500
    ice_servers: str = ""  # comma-separated stun:/turn: URLs, see race_server.stream.whep.parse_ice_servers


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise VideoSettingsError(f"{name}={raw!r} is not an integer (allowed: {low}..{high})") from None
    if not low <= value <= high:
        raise VideoSettingsError(f"{name}={value} is out of range (allowed: {low}..{high})")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in allowed:
        raise VideoSettingsError(f"{name}={value!r} is not allowed (allowed: {', '.join(allowed)})")
    return value


def load_video_settings(env: Mapping[str, str]) -> VideoSettings:
    enabled = _choice(env, "TRACKSIDE_VIDEO", "on", ("on", "off", "true", "false", "1", "0")) in ("on", "true", "1")
    width, height = SIZES[_choice(env, "TRACKSIDE_VIDEO_SIZE", "1280x720", tuple(SIZES))]
    ice = env.get("TRACKSIDE_ICE_SERVERS", "").strip()
    for url in filter(None, (part.strip() for part in ice.split(","))):
        if url.split(":", 1)[0] not in ("stun", "stuns", "turn", "turns") or ":" not in url:
            raise VideoSettingsError(f"TRACKSIDE_ICE_SERVERS: {url!r} is not a stun:, stuns:, turn: or turns: URL")
    return VideoSettings(
        enabled=enabled,
        codec=_choice(env, "TRACKSIDE_VIDEO_CODEC", "vp8", CODEC_NAMES),
        width=width,
        height=height,
        fps=_int(env, "TRACKSIDE_VIDEO_FPS", 30, 5, 60),
        bitrate=_int(env, "TRACKSIDE_VIDEO_BITRATE", 2_500_000, 200_000, 20_000_000),
        view=_choice(env, "TRACKSIDE_VIDEO_VIEW", "chase", VIEW_NAMES),
        max_viewers=_int(env, "TRACKSIDE_VIDEO_MAX_VIEWERS", 500, 1, 5000),
        ice_servers=ice,
    )
