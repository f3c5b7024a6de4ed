"""Checks every request passes before routing, as plain ASGI (HTTP and websockets alike).

A NUL can arrive percent-encoded in any path or query (``/api/join/a%00b``); PostgreSQL refuses it
in text, so it would surface as a 500 from whichever query first used the value.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send


class EdgeGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and _has_nul(scope):
            if scope["type"] == "websocket":
                # Closing before accept refuses the handshake (the client sees HTTP 403).
                await send({"type": "websocket.close", "code": 1008, "reason": "NUL in the request path"})
                return
            body = json.dumps({"error": "the path or query contains a NUL character", "code": "bad_request"})
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body.encode()})
            return
        await self.app(scope, receive, send)


def _has_nul(scope: Scope) -> bool:
    query: bytes = scope.get("query_string", b"")
    return "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query
