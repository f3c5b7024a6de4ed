"""Model store over HTTP: list, inspect, import (archive or browser folder upload), validate,
clone, delete, export and car bundles. Thin: rules live in ``race_server.models``.

Uploads are spooled to disk as they arrive (never held in memory) and unpacked in a thread. A
client that sends ``X-Upload-Id`` can poll ``GET /api/models/uploads/{id}`` for progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from race_server.api.errors import ApiError, json_body
from race_server.api.upload_gate import upload_gate
from race_server.auth import Principal, Role, principal_of, requires
from race_server.db.models import ModelRecord
from race_server.input_guard import UnsafeInput, check_string
from race_server.models.archive import ArchiveError, extract_archive
from race_server.models.export import write_car_bundle, write_folder_tar
from race_server.models.folder import Problem
from race_server.models.store import ImportResult, ModelStore
from race_server.models.upload import extract_multipart
from race_server.models.validation import validate_folder

MULTIPART_OVERHEAD = 64 * 1024 * 1024
_PROGRESS_TTL_S = 600


def model_store(request: Request) -> ModelStore:
    """One store per app; the lead's lifespan may set app.state.model_store (and call recover())."""
    state = request.app.state
    store = getattr(state, "model_store", None)
    if store is None:
        store = ModelStore(state.pool, Path(state.settings.data_dir))
        state.model_store = store
    assert isinstance(store, ModelStore)
    return store


def _uploads(request: Request) -> dict[str, dict[str, Any]]:
    uploads = getattr(request.app.state, "model_uploads", None)
    if uploads is None:
        uploads = {}
        request.app.state.model_uploads = uploads
    now = time.monotonic()
    for key in [k for k, v in uploads.items() if now - v["updated"] > _PROGRESS_TTL_S]:
        del uploads[key]
    assert isinstance(uploads, dict)
    return uploads


def _owner(principal: Principal) -> int:
    assert principal.user_id is not None
    return principal.user_id


async def _model_for(request: Request) -> ModelRecord:
    principal = principal_of(request)
    record = await model_store(request).get(int(request.path_params["model_id"]))
    # Least privilege: a model is its owner's alone, organizers' included (docs/security.md).
    if record is None or record.owner_id != principal.user_id:
        raise ApiError(404, "not_found", f"no model {request.path_params['model_id']} of yours")
    return record


async def _spool(request: Request, dest: Path, limit: int, quota_left: int, progress: dict[str, Any]) -> None:
    """Write the body to ``dest`` as it arrives, refusing more than ``limit`` bytes."""
    received = 0
    with dest.open("wb") as out:
        async for chunk in request.stream():
            received += len(chunk)
            progress.update(received=received, updated=time.monotonic())
            if received > quota_left:
                raise ApiError(
                    413, "quota_exceeded", f"the upload is larger than what is left of your quota ({quota_left} bytes)"
                )
            if received > limit:
                raise ApiError(
                    413,
                    "MODEL_TAR_FILE_SIZE_LIMIT_EXCEEDED",
                    f"Model file too large: Import model manually. The upload is over {limit} bytes (1 GB folder).",
                )
            await asyncio.to_thread(out.write, chunk)


async def _receive(request: Request, store: ModelStore, quota_left: int) -> tuple[Path, dict[str, str], Path]:
    """Spool and unpack the upload; returns (staging folder, form fields, work dir to remove)."""
    upload_id = request.headers.get("x-upload-id") or uuid.uuid4().hex
    expected = request.headers.get("content-length")
    progress: dict[str, Any] = {
        "phase": "receiving",
        "received": 0,
        "expected": int(expected) if expected and expected.isdigit() else None,
        "updated": time.monotonic(),
    }
    _uploads(request)[upload_id[:64]] = progress
    work = store.new_staging()
    work.mkdir(parents=True)
    body = work / "upload.body"
    content_type = request.headers.get("content-type", "")
    multipart = content_type.startswith("multipart/form-data")
    limit = store.limits.folder_bytes + (MULTIPART_OVERHEAD if multipart else 0)
    try:
        await _spool(request, body, limit, quota_left, progress)
        progress.update(phase="unpacking", updated=time.monotonic())
        fields: dict[str, str] = {}
        if multipart:
            _, fields = await asyncio.to_thread(
                extract_multipart, body, content_type, work / "folder", store.archive_limits
            )
        else:
            await asyncio.to_thread(extract_archive, body, work / "folder", store.archive_limits)
        body.unlink()
        progress.update(phase="validating", updated=time.monotonic())
        return work / "folder", fields, work
    except BaseException:
        progress.update(phase="failed", updated=time.monotonic())
        await asyncio.to_thread(shutil.rmtree, work, True)
        raise


def _result_response(result: ImportResult, created: int = 201) -> JSONResponse:
    return JSONResponse(result.as_json(), status_code=created if result.ok else 422)


@requires(Role.ORGANIZER, Role.RACER)
async def list_models(request: Request) -> Response:
    principal = principal_of(request)
    records = await model_store(request).list_models(_owner(principal))
    return JSONResponse({"models": [r.as_json() for r in records]})


@requires(Role.ORGANIZER, Role.RACER)
async def get_model(request: Request) -> Response:
    record = await _model_for(request)
    files = await model_store(request).files(record.id)
    body = record.as_json()
    body["files"] = [{"path": f.path, "sha256": f.sha256, "size_bytes": f.size_bytes} for f in files]
    body["model_pb"] = await _model_pb_available(request)
    return JSONResponse(body)


async def _model_pb_available(request: Request) -> bool:
    """Whether car bundles include the stock car's model.pb (the ``tensorflow`` extra); asked once."""
    known = getattr(request.app.state, "model_pb_available", None)
    if known is None:
        from race_server.models.car import pb_writer

        known = await asyncio.to_thread(lambda: pb_writer() is not None)
        request.app.state.model_pb_available = known
    return bool(known)


@requires(Role.ORGANIZER, Role.RACER)
async def import_model(request: Request) -> Response:
    store = model_store(request)
    owner = _owner(principal_of(request))
    async with upload_gate(request.app.state).admit(request.app.state.pool, owner) as quota_left:
        try:
            folder, fields, work = await _receive(request, store, quota_left)
        except ArchiveError as error:
            return _result_response(ImportResult(False, None, [error.problem]))
        try:
            name = request.query_params.get("name") or fields.get("name", "")
            description = request.query_params.get("description") or fields.get("description", "")
            try:  # form fields arrive outside the JSON edge: same string rules
                check_string(name, "name")
                check_string(description, "description")
            except UnsafeInput as error:
                raise ApiError(422, "invalid", str(error)) from None
            result = await store.import_staged(owner, name, folder, description[:2000])
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
    upload_id = request.headers.get("x-upload-id")
    if upload_id:
        _uploads(request).get(upload_id[:64], {}).update(phase="done" if result.ok else "failed")
    return _result_response(result)


@requires(Role.ORGANIZER, Role.RACER)
async def validate_upload(request: Request) -> Response:
    """Dry run: the same checks as an import, nothing kept."""
    store = model_store(request)
    owner = _owner(principal_of(request))
    async with upload_gate(request.app.state).admit(request.app.state.pool, owner) as quota_left:
        try:
            folder, _, work = await _receive(request, store, quota_left)
        except ArchiveError as error:
            return _result_response(ImportResult(False, None, [error.problem]), created=200)
        try:
            report = await asyncio.to_thread(validate_folder, folder, store.limits, store.weights_check)
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
    return JSONResponse(
        {
            "ok": report.ok,
            "model": None,
            "files": report.files,
            "errors": [p.as_json() for p in report.errors],
            "warnings": [p.as_json() for p in report.warnings],
        },
        status_code=200 if report.ok else 422,
    )


@requires(Role.ORGANIZER, Role.RACER)
async def upload_progress(request: Request) -> Response:
    progress = _uploads(request).get(request.path_params["upload_id"])
    if progress is None:
        raise ApiError(404, "not_found", "no such upload")
    return JSONResponse({k: v for k, v in progress.items() if k != "updated"})


async def _race_using(request: Request, model_id: int) -> str | None:
    """The name of a race not yet closed with an entry of this model, if any."""
    from datetime import UTC, datetime

    from race_server.db import races

    pool = request.app.state.pool
    rows = await pool.fetch("SELECT DISTINCT race_id FROM race_submissions WHERE model_id = $1", model_id)
    now = datetime.now(UTC)
    for row in rows:
        race = await races.get(pool, row["race_id"])
        if race is not None and race.config.status(now) != "closed":
            return race.config.name
    return None


@requires(Role.ORGANIZER, Role.RACER)
async def delete_model(request: Request) -> Response:
    record = await _model_for(request)
    race = await _race_using(request, record.id)
    if race is not None:
        raise ApiError(
            409, "MODEL_IN_USE", f"the race {race!r} uses this model; it can be deleted once the race closes"
        )
    await model_store(request).delete(record.id)
    return JSONResponse({"ok": True})


@requires(Role.ORGANIZER, Role.RACER)
async def clone_model(request: Request) -> Response:
    record = await _model_for(request)
    data = await json_body(request)
    name = data.get("name")
    if not isinstance(name, str):
        raise ApiError(422, "invalid", "field 'name' is required")
    description = data.get("description", "")
    result = await model_store(request).clone(
        record.id, _owner(principal_of(request)), name, description if isinstance(description, str) else ""
    )
    return _result_response(result)


def _choice(request: Request) -> str:
    choice = request.query_params.get("checkpoint", "last")
    if choice not in ("best", "last"):
        raise ApiError(422, "invalid", "checkpoint must be best or last")
    return choice


def _temp_file(request: Request, suffix: str) -> Path:
    store = model_store(request)
    fd, name = tempfile.mkstemp(suffix=suffix, dir=store.staging_root)
    with contextlib.suppress(OSError):
        import os

        os.close(fd)
    return Path(name)


@requires(Role.ORGANIZER, Role.RACER)
async def export_model(request: Request) -> Response:
    record = await _model_for(request)
    choice = _choice(request)
    store = model_store(request)
    files = await store.files(record.id)
    out = _temp_file(request, ".tar.gz")

    def write() -> None:
        with out.open("wb") as handle:
            write_folder_tar(store.blobs, files, record.checkpoints, choice, handle, record.hyperparameters)  # type: ignore[arg-type]

    await asyncio.to_thread(write)
    return FileResponse(
        out,
        media_type="application/gzip",
        filename=f"{record.name}.tar.gz",
        background=BackgroundTask(out.unlink, missing_ok=True),
    )


@requires(Role.ORGANIZER, Role.RACER)
async def car_bundle(request: Request) -> Response:
    record = await _model_for(request)
    if record.weights != "ready":
        raise ApiError(409, "WEIGHTS_NEED_CONVERSION", "convert the TensorFlow weights first (trackside model convert)")
    choice = _choice(request)
    store = model_store(request)
    work = store.new_staging()
    out = _temp_file(request, ".tar.gz")
    try:
        await store.materialize(record.id, work / "folder")
        name = str(record.checkpoints[choice]["name"])
        from race_server.models.car import onnx_writer, pb_writer

        def write() -> None:
            with out.open("wb") as handle:
                write_car_bundle(
                    work / "folder", name, handle, onnx_writer=onnx_writer, pb_writer=pb_writer(), work=work
                )

        await asyncio.to_thread(write)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)
    return FileResponse(
        out,
        media_type="application/gzip",
        filename=f"{record.name}-car.tar.gz",
        background=BackgroundTask(out.unlink, missing_ok=True),
    )


def problem_response(problem: Problem, status: int = 422) -> JSONResponse:
    return JSONResponse({"ok": False, "model": None, "errors": [problem.as_json()]}, status_code=status)


routes: list[BaseRoute] = [
    Route("/api/models", list_models, methods=["GET"]),
    Route("/api/models/import", import_model, methods=["POST"]),
    Route("/api/models/validate", validate_upload, methods=["POST"]),
    Route("/api/models/uploads/{upload_id}", upload_progress, methods=["GET"]),
    Route("/api/models/{model_id:int}", get_model, methods=["GET"]),
    Route("/api/models/{model_id:int}", delete_model, methods=["DELETE"]),
    Route("/api/models/{model_id:int}/clone", clone_model, methods=["POST"]),
    Route("/api/models/{model_id:int}/export", export_model, methods=["GET"]),
    Route("/api/models/{model_id:int}/car-bundle", car_bundle, methods=["GET"]),
]
