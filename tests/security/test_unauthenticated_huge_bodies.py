"""Threat: an unauthenticated client streams huge request bodies at the JSON endpoints that need no
sign-in (login, sign-up, join by link) to exhaust the server's memory. Three 500 MiB bodies in
parallel must leave the server's RSS under +100 MB: the body is read only up to its limit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.races_api.helpers import live_config, login, make_user

BODY_BYTES = 500 * 1024 * 1024
CHUNK = b"x" * (1024 * 1024)
RSS_BUDGET = 100 * 1024 * 1024


def rss() -> int:
    """This process's resident memory: the server under test runs in it (tests.conftest.LiveServer)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def _flood(port: int, path: str, baseline: int, *, chunked: bool) -> tuple[int, bytes, int]:
    """Send up to BODY_BYTES; stop when the server answers or RSS passes the budget.
    Returns (bytes sent, response head, worst RSS growth seen)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framing = b"Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {BODY_BYTES}\r\n".encode()
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".encode() + framing + b"\r\n"
    )
    answer = asyncio.create_task(reader.read(4096))
    sent = 0
    worst = 0
    try:
        while sent < BODY_BYTES and not answer.done():
            writer.write(b"%x\r\n%b\r\n" % (len(CHUNK), CHUNK) if chunked else CHUNK)
            await writer.drain()
            sent += len(CHUNK)
            worst = max(worst, rss() - baseline)
            if worst > RSS_BUDGET:
                break
    except (ConnectionError, OSError):
        pass  # the server stopped reading and closed: the point of the fix
    try:
        head = await asyncio.wait_for(answer, 10)
    except (ConnectionError, OSError, TimeoutError):
        head = b""
    writer.close()
    return sent, head, worst


async def test_three_500_mib_bodies_leave_rss_under_100_mb(server: LiveServer, settings: Settings) -> None:
    await make_user(settings, "organizer", "org@example.com")
    org = await login(server, "org@example.com")
    code = (await org.post("/api/races", json=live_config())).json()["invite_code"]
    await org.aclose()
    paths = ["/api/auth/login", "/api/auth/signup", f"/api/join/{code}"]
    for chunked in (True, False):
        baseline = rss()
        results = await asyncio.gather(*(_flood(server.port, path, baseline, chunked=chunked) for path in paths))
        assert any(head for _, head, _ in results), "no endpoint answered the flood"
        for path, (sent, head, worst) in zip(paths, results, strict=True):
            assert worst < RSS_BUDGET, f"{path}: RSS grew {worst >> 20} MiB after {sent >> 20} MiB sent"
            assert sent < BODY_BYTES, f"{path}: the server read the whole body"
            if head:  # the answer may be lost when the server resets the connection mid-upload
                status_line, _, rest = head.partition(b"\r\n")
                assert b" 413 " in status_line, head[:200]
                body = rest.partition(b"\r\n\r\n")[2]
                if body:
                    assert json.loads(body)["code"] == "too_large"
