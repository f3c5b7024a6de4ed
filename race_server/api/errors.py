"""One error shape for every endpoint: {"error": human message, "code": machine code}."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse({"error": error.message, "code": error.code}, status_code=error.status, headers=error.headers)


async def json_body(request: Request, max_bytes: int = 64 * 1024) -> dict[str, Any]:
    body = await request.body()
    if len(body) > max_bytes:
        raise ApiError(413, "too_large", f"request body over {max_bytes} bytes")
    try:
        data = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ApiError(400, "bad_json", f"request body is not valid JSON: {error}") from None
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
