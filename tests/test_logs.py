"""Log formats: readable lines on a terminal, JSON lines elsewhere, or as TRACKSIDE_LOG_FORMAT says."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

import pytest

from race_server.banner import banner_lines, base_url
from race_server.logs import TextFormatter, configure_logging, request_id, resolve_format
from race_server.settings import SettingsError, load_settings


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_root_logger() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers, root.level = handlers, level


def test_auto_is_text_on_a_terminal_and_json_elsewhere() -> None:
    assert resolve_format("auto", Terminal()) == "text"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("json", Terminal()) == "json"
    assert resolve_format("text", io.StringIO()) == "text"


def test_the_setting_defaults_to_auto_and_names_a_bad_value(tmp_path: Path) -> None:
    env = {"TRACKSIDE_DATA_DIR": str(tmp_path), "TRACKSIDE_SECRET_KEY": "k" * 40}
    assert load_settings(env).log_format == "auto"
    assert load_settings({**env, "TRACKSIDE_LOG_FORMAT": "TEXT"}).log_format == "text"
    with pytest.raises(
        SettingsError, match=r"TRACKSIDE_LOG_FORMAT='yaml' is not allowed \(allowed: auto, json, text\)"
    ):
        load_settings({**env, "TRACKSIDE_LOG_FORMAT": "yaml"})


def test_a_terminal_gets_short_readable_lines() -> None:
    stream = Terminal()
    assert configure_logging("info", "auto", stream) == "text"
    token = request_id.set("req-7")
    try:
        logging.getLogger("trackside.demo").info("race %s ready", 2, extra={"track": "Bowtie_track"})
    finally:
        request_id.reset(token)
    line = stream.getvalue().rstrip("\n")
    assert line.endswith(" INFO    demo: race 2 ready  track=Bowtie_track  request_id=req-7")
    assert "{" not in line


def test_a_pipe_gets_one_json_object_a_line() -> None:
    stream = io.StringIO()
    assert configure_logging("info", "auto", stream) == "json"
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 1, extra={"color_message": "\x1b[36m"})
    entry = json.loads(stream.getvalue())
    assert entry["msg"] == "Started server process [1]" and entry["logger"] == "uvicorn.error"
    assert "color_message" not in entry


def test_exceptions_follow_the_text_line() -> None:
    formatter = TextFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("trackside.x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    assert formatter.format(record).splitlines()[-1] == "ValueError: boom"


def test_the_banner_names_the_pages_to_open() -> None:
    assert base_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"
    assert base_url("::1", 8000) == "http://[::1]:8000"
    urls = {"sign_in": "http://127.0.0.1:8000/", "demo_live": "http://127.0.0.1:8000/?race=2&viewer=tsv_x"}
    lines = banner_lines(urls, needs_organizer=False, wildcard=False)
    assert "    Sign in:        http://127.0.0.1:8000/" in lines
    assert "    Demo LIVE race: http://127.0.0.1:8000/?race=2&viewer=tsv_x" in lines
    assert not any("create-organizer" in line for line in lines)
