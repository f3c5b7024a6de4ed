"""What `trackside serve` says once it is ready: the addresses to open in a browser.

On a terminal (text logs) a short block on stderr. With JSON logs the lines usually go to a log
shipper, where a viewer token must not travel: one record ("open in a browser") carries the URLs
with their tokens masked and names a file in the data dir, readable only by the server's user,
that holds them whole.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from race_server.redaction import redact

log = logging.getLogger("trackside.banner")
DEMO_WAIT_S = 30.0  # the demo's LIVE race exists a moment after start-up; no banner waits longer
LINKS_FILE = "open-in-browser.txt"


def base_url(host: str, port: int) -> str:
    # A wildcard bind is reachable on loopback too, and that is the address a browser here can open.
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def banner_lines(urls: dict[str, str], *, needs_organizer: bool, wildcard: bool) -> list[str]:
    labels = {"sign_in": "Sign in", "demo_live": "Demo LIVE race", "demo_classic": "Demo classic race"}
    width = max(len(labels[key]) for key in urls) + 2
    lines = ["", "  Trackside is ready. Open:"]
    lines += [f"    {(labels[key] + ':').ljust(width)}{url}" for key, url in urls.items()]
    if wildcard:
        lines.append("    (listening on every address: other machines use this machine's name or IP)")
    if needs_organizer:
        lines.append("  First time? Create your organizer account:")
        lines.append("    trackside admin create-organizer --email you@example.com")
    lines += ["  Ctrl-C stops the server.", ""]
    return lines


async def announce(state: Any, host: str, port: int, log_format: str) -> None:
    """Wait (briefly) for the demo's races, then print the banner (text) or log it (json)."""
    from race_server.cli_owner import organizer_accounts

    root = base_url(host, port)
    urls = {"sign_in": f"{root}/"}
    demo = getattr(state, "race_demo", None)
    if demo is not None:
        try:
            await asyncio.wait_for(demo.ready.wait(), DEMO_WAIT_S)
        except TimeoutError:
            log.warning("the demo LIVE race is not ready yet; its link follows in the log")
        if demo.live_link:
            urls["demo_live"] = root + demo.live_link
        if demo.classic_link:
            urls["demo_classic"] = root + demo.classic_link
    needs_organizer = not await organizer_accounts(state.pool, limit=1)
    if log_format == "json":
        links = await asyncio.to_thread(write_links_file, state.settings.data_dir, urls)
        extra = {f"{key}_url": redact(url) for key, url in urls.items()}
        log.info("open in a browser", extra={**extra, "links_file": str(links)})
        return
    lines = banner_lines(urls, needs_organizer=needs_organizer, wildcard=host in ("0.0.0.0", "", "::"))
    print("\n".join(lines), file=sys.stderr, flush=True)


def write_links_file(data_dir: Path, urls: dict[str, str]) -> Path:
    """The full links, for the person who started the server: mode 0600, replaced whole at each start."""
    path = data_dir / LINKS_FILE
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("".join(f"{key}: {url}\n" for key, url in urls.items()))
    os.replace(partial, path)
    return path
