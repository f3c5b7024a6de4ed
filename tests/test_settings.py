"""Settings: read once from the environment, validated with messages that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from race_server.settings import SettingsError, load_settings


def test_defaults_bind_loopback_and_embed_everything(tmp_path: Path) -> None:
    settings = load_settings({"TRACKSIDE_DATA_DIR": str(tmp_path)})
    assert settings.host == "127.0.0.1" and settings.port == 8000
    assert settings.embedded_database and settings.redis_url is None
    assert settings.data_dir == tmp_path.resolve()


def test_generated_secret_key_is_kept_private_and_stable(tmp_path: Path) -> None:
    first = load_settings({"TRACKSIDE_DATA_DIR": str(tmp_path)})
    second = load_settings({"TRACKSIDE_DATA_DIR": str(tmp_path)})
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_race_overrides_are_unset_unless_given(tmp_path: Path) -> None:
    plain = load_settings({"TRACKSIDE_DATA_DIR": str(tmp_path)})
    assert (plain.race_realtime, plain.race_countdown_s, plain.race_slot_s) == (None, None, None)
    rehearsal = load_settings(
        {
            "TRACKSIDE_DATA_DIR": str(tmp_path),
            "TRACKSIDE_RACE_REALTIME": "0",
            "TRACKSIDE_RACE_COUNTDOWN_S": "3",
            "TRACKSIDE_RACE_SLOT_S": "20",
        }
    )
    assert (rehearsal.race_realtime, rehearsal.race_countdown_s, rehearsal.race_slot_s) == (False, 3, 20.0)


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings({"TRACKSIDE_DATA_DIR": str(tmp_path)})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TRACKSIDE_PORT", "eighty", "TRACKSIDE_PORT='eighty' is not an integer"),
        ("TRACKSIDE_PORT", "70000", "TRACKSIDE_PORT=70000 is out of range"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL has scheme 'mysql'"),
        ("REDIS_URL", "http://localhost", "REDIS_URL has scheme 'http'"),
        ("TRACKSIDE_LOG_FORMAT", "xml", "TRACKSIDE_LOG_FORMAT='xml' is not allowed"),
        ("TRACKSIDE_SECURE_COOKIES", "maybe", "TRACKSIDE_SECURE_COOKIES='maybe' is not a boolean"),
        ("TRACKSIDE_SECRET_KEY", "short", "at least 32 characters"),
        ("TRACKSIDE_RACE_SLOT_S", "0.5", "TRACKSIDE_RACE_SLOT_S=0.5 is out of range"),
        ("TRACKSIDE_RACE_REALTIME", "perhaps", "TRACKSIDE_RACE_REALTIME='perhaps' is not a boolean"),
        ("TRACKSIDE_RACE_COUNTDOWN_S", "99", "TRACKSIDE_RACE_COUNTDOWN_S=99 is out of range"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings({"TRACKSIDE_DATA_DIR": str(tmp_path), name: value})


def test_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(SettingsError, match="not a directory"):
        load_settings({"TRACKSIDE_DATA_DIR": str(target)})
