"""The browser app: the page shells (``web/index.html``, ``web/broadcast.html``), the static files
under ``/static`` and the Content-Security-Policy every response carries.

Pages are client-side routes of one shell, so every address a person may be sent to (a race's
invitation link ``/join/{code}``, a race page, broadcast mode for OBS) answers with the shell and
the page's own script works out what to show. No script is inline, so the policy can forbid it.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WEB_DIR = Path(__file__).resolve().parents[2] / "web"

# 'self' covers same-origin ws:/wss: in CSP Level 3 browsers (current Chromium and Firefox).
# media-src blob: is for the WHEP video element's MediaStream; style-src has no 'unsafe-inline':
# the pages set styles through the CSSOM only.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
)
_SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the policy to every HTTP response (pages, scripts, API answers alike)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in _SECURITY_HEADERS if name not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_policy)


def _shell(name: str) -> Response:
    # Shells are tiny and change with every deploy: always revalidate so a new version is seen at once.
    return FileResponse(WEB_DIR / name, media_type="text/html", headers={"Cache-Control": "no-cache"})


async def app_shell(request: Request) -> Response:
    return _shell("index.html")


async def broadcast_shell(request: Request) -> Response:
    return _shell("broadcast.html")


_APP_PAGES = [
    "/",
    "/signin",
    "/signup",
    "/alias",
    "/races",
    "/races/{race_id:int}",
    "/races/{race_id:int}/{page}",
    "/manage",
    "/manage/{rest:path}",
    "/fleet",
    "/join/{code}",
    "/models",
    "/models/{rest:path}",
    "/jobs/{job_id:int}",
    "/account",
]

routes: list[BaseRoute] = [
    *(Route(path, app_shell, methods=["GET", "HEAD"]) for path in _APP_PAGES),
    Route("/broadcast/{race_id:int}", broadcast_shell, methods=["GET", "HEAD"]),
    Mount("/static", app=StaticFiles(directory=WEB_DIR), name="static"),
]
