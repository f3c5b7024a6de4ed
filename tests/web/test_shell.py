"""The app shell over HTTP: pages answer with the shell, static files with their types, and every
response carries a Content-Security-Policy that forbids inline script."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.conftest import LiveServer

WEB = Path(__file__).resolve().parents[2] / "web"


async def test_pages_static_files_and_policy(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        for path in ("/", "/signin", "/races/3", "/races/3/live", "/manage/new", "/join/tsr_abc"):
            page = await client.get(path)
            assert page.status_code == 200, path
            assert '<script type="module" src="/static/js/app.js">' in page.text
            policy = page.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        broadcast = await client.get("/broadcast/3?viewer=x&scene=race")
        assert broadcast.status_code == 200 and "/static/js/broadcast.js" in broadcast.text
        script = await client.get("/static/js/app.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        vendor = await client.get("/static/vendor/preact.mjs")
        assert vendor.status_code == 200 and "javascript" in vendor.headers["content-type"]
        api = await client.get("/api/races")
        assert api.status_code == 401 and "content-security-policy" in api.headers
        assert (await client.get("/static/../race_server/app.py")).status_code == 404


def test_no_inline_script_or_style_in_the_shells() -> None:
    for shell in ("index.html", "broadcast.html"):
        text = (WEB / shell).read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), shell
        assert "<style" not in text and " style=" not in text and "onclick" not in text.lower(), shell


def test_vendored_libraries_have_licence_and_version() -> None:
    vendor = WEB / "vendor"
    listing = (vendor / "VENDOR.md").read_text(encoding="utf-8")
    for library, version in (("preact", "10.29.8"), ("htm", "3.1.1"), ("sortablejs", "1.15.7")):
        assert (vendor / f"LICENSE.{library}").is_file()
        assert f"| {library}" in listing and version in listing
