"""Headless Chromium as a WHEP viewer (Playwright, Debian's /usr/bin/chromium): tests and the benchmark."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--autoplay-policy=no-user-gesture-required",
    # host candidates as plain loopback/LAN addresses: aiortc cannot resolve Chromium's mDNS names
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
PROBE_SCRIPT = Path(__file__).with_name("browser_probe.js")


def probe_script() -> str:
    return PROBE_SCRIPT.read_text()
