"""One frozen settings object, read once from the environment at start-up."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from race_server.stream.settings import VideoSettings, VideoSettingsError, load_video_settings

# auto: readable text on a terminal, JSON lines elsewhere (race_server.logs.resolve_format)
LOG_FORMATS = ("auto", "json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error")


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None = None
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str = ""
    log_level: str = "info"
    log_format: str = "auto"
    secure_cookies: bool = False
    session_max_age_s: int = 14 * 24 * 3600
    login_max_failures: int = 5
    login_window_s: int = 300
    db_pool_max: int = 10
    run_migrations: bool = True
    # Race rehearsal/test overrides; None leaves each race's own setting (and real time) in force.
    race_realtime: bool | None = None
    race_countdown_s: int | None = None
    race_slot_s: float | None = None
    # training/evaluation job workers (trainer.service): how many jobs run at once; 0 disables
    run_workers: bool = True
    workers: int = 1
    video: VideoSettings = field(default_factory=VideoSettings)

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer (allowed: {low}..{high})") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is out of range (allowed: {low}..{high})")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (allowed: true/false, 1/0, yes/no, on/off)")


def _optional_float(env: Mapping[str, str], name: str, low: float, high: float) -> float | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number (allowed: {low:g}..{high:g})") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value:g} is out of range (allowed: {low:g}..{high:g})")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name, default).strip().lower() or default
    if value not in allowed:
        raise SettingsError(f"{name}={value!r} is not allowed (allowed: {', '.join(allowed)})")
    return value


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in schemes:
        raise SettingsError(
            f"{name} has scheme {parts.scheme or '(none)'!r} (allowed: {', '.join(schemes)}), "
            f"e.g. {schemes[0]}://host:port/..."
        )
    return raw


def _secret_key(env: Mapping[str, str], data_dir: Path) -> str:
    """A configured key wins; otherwise one is generated once and kept in the data dir, so
    sessions survive restarts without the organizer having to invent a secret."""
    configured = env.get("TRACKSIDE_SECRET_KEY", "").strip()
    if configured:
        if len(configured) < 32:
            raise SettingsError("TRACKSIDE_SECRET_KEY must be at least 32 characters long")
        return configured
    key_file = data_dir / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "trackside"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    data_dir = Path(env.get("TRACKSIDE_DATA_DIR", "") or default_data_dir()).expanduser().resolve()
    if data_dir.exists() and not data_dir.is_dir():
        raise SettingsError(f"TRACKSIDE_DATA_DIR={str(data_dir)!r} exists and is not a directory")
    return Settings(
        data_dir=data_dir,
        database_url=_url(env, "DATABASE_URL", ("postgresql", "postgres")),
        redis_url=_url(env, "REDIS_URL", ("redis", "rediss", "unix")),
        host=env.get("TRACKSIDE_HOST", "127.0.0.1").strip() or "127.0.0.1",
        port=_int(env, "TRACKSIDE_PORT", 8000, 1, 65535),
        secret_key=_secret_key(env, data_dir),
        log_level=_choice(env, "TRACKSIDE_LOG_LEVEL", "info", LOG_LEVELS),
        log_format=_choice(env, "TRACKSIDE_LOG_FORMAT", "auto", LOG_FORMATS),
        secure_cookies=_bool(env, "TRACKSIDE_SECURE_COOKIES", False),
        session_max_age_s=_int(env, "TRACKSIDE_SESSION_MAX_AGE_S", 14 * 24 * 3600, 60, 365 * 24 * 3600),
        login_max_failures=_int(env, "TRACKSIDE_LOGIN_MAX_FAILURES", 5, 1, 1000),
        login_window_s=_int(env, "TRACKSIDE_LOGIN_WINDOW_S", 300, 1, 86400),
        db_pool_max=_int(env, "TRACKSIDE_DB_POOL_MAX", 10, 2, 200),
        race_realtime=None if not env.get("TRACKSIDE_RACE_REALTIME") else _bool(env, "TRACKSIDE_RACE_REALTIME", True),
        race_countdown_s=None
        if not env.get("TRACKSIDE_RACE_COUNTDOWN_S")
        else _int(env, "TRACKSIDE_RACE_COUNTDOWN_S", 10, 0, 60),
        race_slot_s=_optional_float(env, "TRACKSIDE_RACE_SLOT_S", 1.0, 600.0),
        run_workers=_int(env, "TRACKSIDE_WORKERS", 1, 0, 64) > 0,
        workers=_int(env, "TRACKSIDE_WORKERS", 1, 0, 64),
        video=_video(env),
    )


def _video(env: Mapping[str, str]) -> VideoSettings:
    try:
        return load_video_settings(env)
    except VideoSettingsError as error:
        raise SettingsError(str(error)) from None
