"""`trackside model …`: the store from the command line, and `push` for DeepRacer-for-Cloud users.

Local commands (import, export, list, delete, clone, convert) work on this machine's data dir and
database. `push` uploads a local training folder to a Trackside server over HTTP with the
switches of DRfC's dr-upload-model (-f -w -d -b -p -i -I).
"""

from __future__ import annotations

import asyncio
import json
import tarfile
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from race_server.cli_outcome import emit, fail, problem, use_json
from race_server.cli_owner import resolve_owner
from race_server.models.folder import COACH_CHECKPOINT, DEEPRACER_CHECKPOINTS, Problem, is_checkpoint_file
from race_server.models.validation import FolderReport, validate_folder

model_app = typer.Typer(help="Model store: import, export, list, delete, clone, push.", no_args_is_help=True)
T = TypeVar("T")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object (ok, errors, …).")]
OwnerOpt = Annotated[
    str | None,
    typer.Option("--owner", help="Owner's email (default: the only organizer, else the local owner)."),
]


def _error_json(problem: dict[str, Any]) -> dict[str, Any]:
    return {k: problem.get(k) for k in ("code", "message", "file", "field")}


def _print_result(result: dict[str, Any], as_json: bool, done: str | None = None) -> None:
    if as_json:
        emit(
            bool(result["ok"]),
            [_error_json(p) for p in result.get("errors", [])],
            model=result.get("model"),
            warnings=[_error_json(p) for p in result.get("warnings", [])],
        )
        return
    model = result.get("model")
    if result["ok"] and done:
        typer.echo(done)
    elif result["ok"] and model:
        typer.echo(
            f"imported {model['name']} (id {model['id']}, {model['size_bytes']} bytes, weights {model['weights']})"
        )
    for p in result.get("errors", []):
        typer.echo(f"error {p['code']}: {p['message']}" + (f" [{p['file']}]" if p.get("file") else ""), err=True)
    for p in result.get("warnings", []):
        typer.echo(f"warning {p['code']}: {p['message']}", err=True)


def _not_found(name: str) -> dict[str, Any]:
    return {"ok": False, "model": None, "errors": [problem("MODEL_NOT_FOUND", f"no model {name}", field="name")]}


def _local(work: Callable[[Any, Any], Awaitable[T]]) -> T:
    """Run ``work(store, conn)`` against this machine's database (migrated first) and data dir."""
    from race_server.cli import database_failures, settings_or_exit
    from race_server.logs import configure_logging

    settings = settings_or_exit()
    configure_logging("warning", "text")

    async def run() -> T:
        import asyncpg

        from race_server.db.lifecycle import database_dsn
        from race_server.db.migrate import migrate
        from race_server.models.store import ModelStore

        async with database_dsn(settings, allow_attach=True) as dsn:
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
            try:
                async with pool.acquire() as conn:
                    await migrate(conn)
                    return await work(ModelStore(pool, Path(settings.data_dir)), conn)
            finally:
                await pool.close()

    with database_failures():
        return asyncio.run(run())


async def _find(store: Any, conn: Any, name: str, owner: str | None) -> Any:
    """The model called ``name``: the owner's when ``--owner`` is given, else the one model of
    that name on this server (several owners using the same name need ``--owner``)."""
    if owner is not None:
        return await store.by_name(await resolve_owner(conn, owner), name)
    matches = [m for m in await store.list_models(None) if m.name.lower() == name.lower()]
    if len(matches) > 1:
        raise fail("OWNER_REQUIRED", f"{len(matches)} owners have a model {name}: add --owner EMAIL", exit_code=2)
    return matches[0] if matches else None


@model_app.command("import")
def import_cmd(
    path: Annotated[Path, typer.Argument(help="Model folder, .tar.gz or .zip.")],
    name: Annotated[str | None, typer.Option(help="Model name (default: the folder's name).")] = None,
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    owner: OwnerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import a DeepRacer or Trackside model folder (or archive) into the store."""
    from race_server.models.store import sanitize_name

    use_json(as_json)
    target = name or sanitize_name(path.name.removesuffix(".tar.gz").removesuffix(".zip"))
    if not path.exists():
        # checked before the database starts: a mistyped path answers at once
        missing = Problem("FILE_DOES_NOT_EXIST", f"{path} does not exist", str(path))
        _print_result({"ok": False, "model": None, "errors": [missing.as_json()]}, as_json)
        raise typer.Exit(1)

    async def work(store: Any, conn: Any) -> dict[str, Any]:
        owner_id = await resolve_owner(conn, owner)
        if path.is_dir():
            result = await store.import_folder(owner_id, target, path, description)
        else:
            result = await store.import_archive(owner_id, target, path, description)
        out: dict[str, Any] = result.as_json()
        return out

    result = _local(work)
    _print_result(result, as_json)
    raise typer.Exit(0 if result["ok"] else 1)


@model_app.command("list")
def list_cmd(owner: OwnerOpt = None, as_json: JsonOpt = False) -> None:
    """List models (an owner's with --owner, else all)."""
    use_json(as_json)

    async def work(store: Any, conn: Any) -> list[dict[str, Any]]:
        owner_id = await resolve_owner(conn, owner) if owner else None
        return [m.as_json() for m in await store.list_models(owner_id)]

    models = _local(work)
    if as_json:
        emit(True, models=models)
        return
    for m in models:
        typer.echo(f"{m['id']:>5}  {m['name']:<40} {m['status']:<9} {m['weights']:<17} {m['size_bytes']:>12}")


@model_app.command("delete")
def delete_cmd(
    name: str, owner: OwnerOpt = None, force: Annotated[bool, typer.Option("-f")] = False, as_json: JsonOpt = False
) -> None:
    """Delete a model and its files."""
    use_json(as_json)
    if not force:
        typer.confirm(f"delete model {name}?", abort=True, err=True)

    async def work(store: Any, conn: Any) -> bool:
        record = await _find(store, conn, name, owner)
        return record is not None and bool(await store.delete(record.id))

    if not _local(work):
        raise fail("MODEL_NOT_FOUND", f"no model {name}", field="name")
    if as_json:
        emit(True, deleted=name)
    else:
        typer.echo(f"deleted {name}")


@model_app.command("clone")
def clone_cmd(name: str, new_name: str, owner: OwnerOpt = None, as_json: JsonOpt = False) -> None:
    """Clone a ready model as the start of new training (owned by --owner, else the source's owner)."""
    use_json(as_json)

    async def work(store: Any, conn: Any) -> dict[str, Any]:
        record = await _find(store, conn, name, owner)
        if record is None:
            return _not_found(name)
        owner_id = await resolve_owner(conn, owner) if owner else record.owner_id
        out: dict[str, Any] = (await store.clone(record.id, owner_id, new_name)).as_json()
        return out

    result = _local(work)
    _print_result(result, as_json, done=f"cloned {name} as {new_name}")
    raise typer.Exit(0 if result["ok"] else 1)


@model_app.command("convert")
def convert_cmd(name: str, owner: OwnerOpt = None, as_json: JsonOpt = False) -> None:
    """Convert a DeepRacer (TensorFlow) model's weights so it can race (needs the tensorflow extra)."""
    use_json(as_json)

    async def work(store: Any, conn: Any) -> dict[str, Any]:
        record = await _find(store, conn, name, owner)
        if record is None:
            return _not_found(name)
        out: dict[str, Any] = (await store.convert(record.id)).as_json()
        return out

    result = _local(work)
    _print_result(result, as_json, done=f"converted {name}: weights ready")
    raise typer.Exit(0 if result["ok"] else 1)


@model_app.command("export")
def export_cmd(
    name: str,
    out: Annotated[Path, typer.Option("--out", "-o", help="The .tar.gz to write.")],
    checkpoint: Annotated[str, typer.Option(help="best or last.")] = "last",
    car: Annotated[bool, typer.Option("--car", help="Physical-car bundle instead of the model folder.")] = False,
    owner: OwnerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export the model folder (DeepRacer layout) or a physical-car bundle."""
    use_json(as_json)
    if checkpoint not in ("best", "last"):
        raise fail("BAD_PARAMETER", "--checkpoint must be best or last", exit_code=2, field="checkpoint")

    async def work(store: Any, conn: Any) -> bool:
        from race_server.models.export import write_car_bundle, write_folder_tar

        record = await _find(store, conn, name, owner)
        if record is None:
            return False
        files = await store.files(record.id)
        if not car:
            with out.open("wb") as handle:
                write_folder_tar(store.blobs, files, record.checkpoints, checkpoint, handle, record.hyperparameters)  # type: ignore[arg-type]
            return True
        from race_server.models.car import onnx_writer, pb_writer

        with tempfile.TemporaryDirectory() as tmp:
            folder = await store.materialize(record.id, Path(tmp) / "folder")
            with out.open("wb") as handle:
                write_car_bundle(
                    folder,
                    record.checkpoints[checkpoint]["name"],
                    handle,
                    onnx_writer=onnx_writer,
                    pb_writer=pb_writer(),
                    work=Path(tmp),
                )
        return True

    if not _local(work):
        raise fail("MODEL_NOT_FOUND", f"no model {name}", field="name")
    if as_json:
        emit(True, written=str(out))
    else:
        typer.echo(f"wrote {out}")


# --- push -----------------------------------------------------------------------------------


def push_plan(report: FolderReport, best: bool) -> tuple[dict[str, Path], str]:
    """Files to upload (archive path -> local file) and the checkpoint they carry."""
    assert report.checkpoints is not None
    ref = report.checkpoints.best if best else report.checkpoints.last
    files = {
        rel: report.root / rel
        for rel in report.files
        if rel not in (COACH_CHECKPOINT, DEEPRACER_CHECKPOINTS) and (not is_checkpoint_file(rel) or rel in ref.files)
    }
    if "model_metadata.json" not in files and "model/model_metadata.json" in files:
        files["model_metadata.json"] = files["model/model_metadata.json"]
    return files, ref.name


def push_name(folder: Path, prefix: str | None, use_prefix: bool, name: str | None) -> str:
    from race_server.models.store import sanitize_name

    if name:
        return name
    if use_prefix:
        if not prefix:
            raise fail("USAGE_ERROR", "-i imports with the prefix as the name: give -p PREFIX", exit_code=2)
        return prefix
    base = sanitize_name(folder.resolve().name)
    return sanitize_name(f"{prefix}-{base}") if prefix else base


def _write_push_tar(files: dict[str, Path], checkpoint: str, out: Path) -> None:
    import io

    with tarfile.open(out, "w:gz") as archive:
        for rel, path in sorted(files.items()):
            archive.add(path, arcname=rel, recursive=False)
        for rel, data in (
            (COACH_CHECKPOINT, checkpoint + "\n"),
            (
                DEEPRACER_CHECKPOINTS,
                json.dumps({"best_checkpoint": {"name": checkpoint}, "last_checkpoint": {"name": checkpoint}}),
            ),
        ):
            info = tarfile.TarInfo(rel)
            info.size = len(data.encode())
            archive.addfile(info, io.BytesIO(data.encode()))


def _chunks(path: Path, size: int = 1024 * 1024) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


@model_app.command("push")
def push_cmd(
    folder: Annotated[Path, typer.Argument(help="Local training folder (DRfC / DeepRacer / Trackside layout).")],
    server: Annotated[str, typer.Option("--server", help="Trackside server URL.")],
    token: Annotated[str, typer.Option("--token", envvar="TRACKSIDE_TOKEN", help="API token (POST /api/tokens).")],
    force: Annotated[bool, typer.Option("-f", help="No confirmation question.")] = False,
    wipe: Annotated[bool, typer.Option("-w", help="Delete the target model on the server first.")] = False,
    dry_run: Annotated[bool, typer.Option("-d", help="Report what would happen; write nothing.")] = False,
    best: Annotated[bool, typer.Option("-b", help="Upload the best checkpoint instead of the last.")] = False,
    prefix: Annotated[str | None, typer.Option("-p", help="Target name prefix.")] = None,
    use_prefix: Annotated[bool, typer.Option("-i", help="Import using the prefix as the model name.")] = False,
    name: Annotated[str | None, typer.Option("-I", help="Import with this model name.")] = None,
) -> None:
    """Upload a local training folder into a Trackside server (DRfC's dr-upload-model switches)."""
    import httpx

    if not folder.is_dir():
        raise fail("FILE_DOES_NOT_EXIST", f"{folder} is not a folder", exit_code=2, file=str(folder))
    target = push_name(folder, prefix, use_prefix, name)
    report = validate_folder(folder, weights_check=None)
    if not report.ok:
        for p in report.errors:
            typer.echo(f"error {p.code}: {p.message}" + (f" [{p.file}]" if p.file else ""), err=True)
        raise typer.Exit(1)
    files, checkpoint = push_plan(report, best)
    total = sum(path.stat().st_size for path in files.values())
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=httpx.Timeout(60.0, write=600.0)) as http:
        listed = http.get("/api/models")
        if listed.status_code != 200:
            raise fail("TOKEN_REFUSED", f"{server} refused the token ({listed.status_code}: {listed.text[:200]})")
        existing = next((m for m in listed.json()["models"] if m["name"].lower() == target.lower()), None)
        which = "best" if best else "last"
        typer.echo(
            f"{'dry run: ' if dry_run else ''}{len(files)} files, {total} bytes, {which} checkpoint "
            f"{checkpoint} -> {server} as {target}"
        )
        for rel in sorted(files):
            typer.echo(f"  {rel}")
        if existing is not None:
            typer.echo(
                f"target {target} exists (id {existing['id']}): "
                + ("it will be wiped" if wipe else "use -w to replace it")
            )
        if dry_run:
            return
        if existing is not None and not wipe:
            raise typer.Exit(1)
        if not force:
            typer.confirm("proceed with upload?", abort=True)
        if existing is not None:
            deleted = http.delete(f"/api/models/{existing['id']}")
            if deleted.status_code != 200:
                raise fail("WIPE_FAILED", f"could not wipe {target}: {deleted.text[:200]}")
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "upload.tar.gz"
            _write_push_tar(files, checkpoint, archive)
            response = http.post(
                "/api/models/import",
                params={"name": target},
                content=_chunks(archive),
                headers={
                    "content-type": "application/gzip",
                    "x-upload-id": uuid.uuid4().hex,
                    "content-length": str(archive.stat().st_size),
                },
            )
    try:
        result = response.json()
    except ValueError:
        result = {"ok": False, "errors": [{"code": str(response.status_code), "message": response.text[:300]}]}
    _print_result(result, False)
    raise typer.Exit(0 if result.get("ok") else 1)
