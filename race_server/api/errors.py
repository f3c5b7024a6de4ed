"""One error shape for every endpoint: {"error": human message, "code": machine code}."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from race_server.db.outage import is_outage
from race_server.input_guard import UnsafeInput, parse_json


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse({"error": error.message, "code": error.code}, status_code=error.status, headers=error.headers)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, read chunk by chunk and abandoned as soon as it passes ``max_bytes``: a client
    announcing or sending 500 MiB costs the server at most ``max_bytes`` plus one chunk."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        raise ApiError(413, "too_large", f"request body over {max_bytes} bytes")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise ApiError(413, "too_large", f"request body over {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, max_bytes: int = 64 * 1024) -> dict[str, Any]:
    """The request's JSON object. Requiring ``application/json`` also keeps cross-site HTML forms
    (which can only send form encodings or ``text/plain`` without a CORS preflight) away from
    cookie-authenticated endpoints."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await read_body(request, max_bytes)
    if not body:
        return {}
    if media_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the request body as Content-Type: application/json")
    try:
        data = parse_json(body)
    except UnsafeInput as error:
        raise ApiError(400, "bad_json", f"request body is not acceptable JSON: {error}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "request body must be a JSON object")
    return data


def field(data: dict[str, Any], name: str, kind: type, *, required: bool = True, default: Any = None) -> Any:
    value = data.get(name, default)
    if value is None:
        if required:
            raise ApiError(422, "invalid", f"field {name!r} is required")
        return default
    if kind is int and isinstance(value, bool):
        raise ApiError(422, "invalid", f"field {name!r} must be an integer")
    if not isinstance(value, kind):
        raise ApiError(422, "invalid", f"field {name!r} must be a {kind.__name__}")
    return value


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own 404/405 (unknown path, id beyond int64, wrong method) in the one shape."""
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "") or "error"
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    return JSONResponse({"error": str(detail), "code": code}, status_code=status, headers=getattr(exc, "headers", None))


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """Anything unhandled: the traceback goes to the log (ServerErrorMiddleware), the client gets JSON.
    A database that cannot be reached is a 503 the client may retry, not a server bug."""
    if is_outage(exc):
        return JSONResponse(
            {"error": "the database is unavailable; try again shortly", "code": "database_unavailable"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"error": "internal server error", "code": "internal"}, status_code=500)
