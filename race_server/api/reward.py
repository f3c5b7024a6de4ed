"""Reward-function validation over HTTP (the workshop's Validate button): the same checks as
``trackside reward validate`` -- static rules naming the line, then sample calls in the sandbox.

A problem answers 422 in the one error shape plus every problem with its line, so the editor can
mark each one where it is.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from race_server.api.errors import ApiError, json_body
from race_server.auth import Role, requires
from trainer.config import ConfigError, direction_name
from trainer.reward_validate import validate_reward

MAX_BODY = 256 * 1024
# Each validation starts a sandbox process; two at a time keeps a burst of clicks from taking the CPUs.
CONCURRENT_VALIDATIONS = 2


def _gate(request: Request) -> asyncio.Semaphore:
    state = request.app.state
    gate = getattr(state, "reward_validation_gate", None)
    if gate is None:
        gate = asyncio.Semaphore(CONCURRENT_VALIDATIONS)
        state.reward_validation_gate = gate
    assert isinstance(gate, asyncio.Semaphore)
    return gate


def _text(data: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ApiError(422, "invalid", f"{name}: a string is required")
    return value


@requires(Role.ORGANIZER, Role.RACER)
async def validate(request: Request) -> Response:
    data = await json_body(request, max_bytes=MAX_BODY)
    source = _text(data, "reward_function", required=True)
    assert source is not None
    track_id = _text(data, "track_id") or "reinvent_base"
    try:
        direction = direction_name(_text(data, "direction"))
    except ConfigError as error:
        raise ApiError(422, "invalid", f"direction: {error}") from None
    world = data.get("world")
    if world is not None and not isinstance(world, dict):
        raise ApiError(422, "invalid", "world: an object is required")
    async with _gate(request):
        problems = await asyncio.to_thread(validate_reward, source, track_id=track_id, direction=direction, world=world)
    if not problems:
        return JSONResponse({"ok": True, "errors": []})
    first = problems[0]
    where = f" (line {first.line})" if first.line else ""
    return JSONResponse(
        {
            "ok": False,
            "error": f"{first.message}{where}",
            "code": first.code,
            "errors": [p.as_dict() for p in problems],
        },
        status_code=422,
    )


routes: list[BaseRoute] = [Route("/api/reward/validate", validate, methods=["POST"])]
