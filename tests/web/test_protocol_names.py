"""The pages speak race_server.protocol: every message type the web code sends or handles exists there."""

from __future__ import annotations

import re
from pathlib import Path

from race_server import protocol

WEB_JS = Path(__file__).resolve().parents[2] / "web" / "js"


def _js() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(WEB_JS.rglob("*.js")))


def _listed(name: str) -> set[str]:
    source = (WEB_JS / "race-socket.js").read_text(encoding="utf-8")
    block = re.search(rf"export const {name} = \[(.*?)\];", source, re.S)
    assert block, f"{name} is missing from race-socket.js"
    return set(re.findall(r'"([a-z_]+)"', block.group(1)))


def test_declared_types_are_the_protocols() -> None:
    assert _listed("CLIENT_MESSAGE_TYPES") <= set(protocol.CLIENT_TYPES)
    assert _listed("SERVER_MESSAGE_TYPES") == set(protocol.SERVER_TYPES)


def test_every_command_the_pages_send_is_a_client_message() -> None:
    sent = set(re.findall(r'command\(\s*"([a-z_]+)"', _js()))
    assert sent, "no commands found: the pattern no longer matches the code"
    assert sent <= set(protocol.CLIENT_TYPES), sent - set(protocol.CLIENT_TYPES)
    assert sent <= _listed("CLIENT_MESSAGE_TYPES")
    assert set(protocol.ORGANIZER_COMMANDS) <= sent  # every organizer command is reachable from a page


def test_every_event_the_reducer_handles_is_a_server_message() -> None:
    source = (WEB_JS / "race-state.js").read_text(encoding="utf-8")
    handled = set(re.findall(r'case "([a-z][a-z_]*)":', source))
    assert handled, "no handled events found: the pattern no longer matches the code"
    assert handled <= set(protocol.SERVER_TYPES), handled - set(protocol.SERVER_TYPES)
