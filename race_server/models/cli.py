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

from race_server.models.folder import COACH_CHECKPOINT, DEEPRACER_CHECKPOINTS, Problem, is_checkpoint_file
from race_server.models.validation import FolderReport, validate_folder

model_app = typer.Typer(help="Model store: import, export, list, delete, clone, push.", no_args_is_help=True)
T = TypeVar("T")


def _error_json(problem: dict[str, Any]) -> dict[str, Any]:
    return {k: problem.get(k) for k in ("code", "message", "file", "field")}


def _print_result(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out = {
            "ok": result["ok"],
            "model": result.get("model"),
            "errors": [_error_json(p) for p in result.get("errors", [])],
            "warnings": [_error_json(p) for p in result.get("warnings", [])],
        }
        typer.echo(json.dumps(out))
        return
    model = result.get("model")
    if result["ok"] and model:
        typer.echo(
            f"imported {model['name']} (id {model['id']}, {model['size_bytes']} bytes, weights {model['weights']})"
        )
    for p in result.get("errors", []):
        typer.echo(f"error {p['code']}: {p['message']}" + (f" [{p['file']}]" if p.get("file") else ""), err=True)
    for p in result.get("warnings", []):
        typer.echo(f"warning {p['code']}: {p['message']}", err=True)


def _local(work: Callable[[Any, int | None], Awaitable[T]], owner_email: str | None = None) -> T:
    """Run ``work(store, owner_id)`` against this machine's database and data dir."""
    from race_server.cli import _settings

    settings = _settings()

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
                    owner = await _owner_id(conn, owner_email)
                return await work(ModelStore(pool, Path(settings.data_dir)), owner)
            finally:
                await pool.close()

    return asyncio.run(run())


async def _owner_id(conn: Any, email: str | None) -> int | None:
    if email is not None:
        row = await conn.fetchrow("SELECT id FROM users WHERE lower(email) = lower($1)", email)
        if row is None:
            typer.echo(f"error: no user {email}", err=True)
            raise typer.Exit(2)
        return int(row["id"])
    rows = await conn.fetch("SELECT id FROM users WHERE role = 'organizer' ORDER BY id LIMIT 2")
    return int(rows[0]["id"]) if len(rows) == 1 else None


def _need_owner(owner: int | None) -> int:
    if owner is None:
        typer.echo("error: say whose model this is with --owner EMAIL", err=True)
        raise typer.Exit(2)
    return owner


OwnerOpt = Annotated[str | None, typer.Option("--owner", help="Owner's email (default: the only organizer).")]


@model_app.command("import")
def import_cmd(
    path: Annotated[Path, typer.Argument(help="Model folder, .tar.gz or .zip.")],
    name: Annotated[str | None, typer.Option(help="Model name (default: the folder's name).")] = None,
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    owner: OwnerOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Import a DeepRacer or Trackside model folder (or archive) into the store."""
    from race_server.models.store import sanitize_name

    target = name or sanitize_name(path.name.removesuffix(".tar.gz").removesuffix(".zip"))

    async def work(store: Any, owner_id: int | None) -> dict[str, Any]:
        owner_id = _need_owner(owner_id)
        if path.is_dir():
            result = await store.import_folder(owner_id, target, path, description)
        elif path.is_file():
            result = await store.import_archive(owner_id, target, path, description)
        else:
            problem = Problem("FILE_DOES_NOT_EXIST", f"{path} does not exist", str(path))
            return {"ok": False, "model": None, "errors": [problem.as_json()]}
        out: dict[str, Any] = result.as_json()
        return out

    result = _local(work, owner)
    _print_result(result, as_json)
    raise typer.Exit(0 if result["ok"] else 1)


def _find(store: Any, owner_id: int | None, name: str) -> Any:
    async def lookup() -> Any:
        return await store.by_name(_need_owner(owner_id), name)

    return lookup()


@model_app.command("list")
def list_cmd(
    owner: OwnerOpt = None, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """List models (an owner's, or all when no single organizer is implied)."""

    async def work(store: Any, owner_id: int | None) -> list[dict[str, Any]]:
        return [m.as_json() for m in await store.list_models(owner_id if owner else None)]

    models = _local(work, owner)
    if as_json:
        typer.echo(json.dumps({"models": models}))
        return
    for m in models:
        typer.echo(f"{m['id']:>5}  {m['name']:<40} {m['status']:<9} {m['weights']:<17} {m['size_bytes']:>12}")


@model_app.command("delete")
def delete_cmd(name: str, owner: OwnerOpt = None, force: Annotated[bool, typer.Option("-f")] = False) -> None:
    """Delete a model and its files."""
    if not force:
        typer.confirm(f"delete model {name}?", abort=True)

    async def work(store: Any, owner_id: int | None) -> bool:
        record = await _find(store, owner_id, name)
        return record is not None and bool(await store.delete(record.id))

    if not _local(work, owner):
        typer.echo(f"error: no model {name}", err=True)
        raise typer.Exit(1)
    typer.echo(f"deleted {name}")


@model_app.command("clone")
def clone_cmd(name: str, new_name: str, owner: OwnerOpt = None) -> None:
    """Clone a ready model as the start of new training."""

    async def work(store: Any, owner_id: int | None) -> dict[str, Any]:
        record = await _find(store, owner_id, name)
        if record is None:
            return {"ok": False, "errors": [Problem("FILE_DOES_NOT_EXIST", f"no model {name}").as_json()]}
        out: dict[str, Any] = (await store.clone(record.id, _need_owner(owner_id), new_name)).as_json()
        return out

    result = _local(work, owner)
    _print_result(result, False)
    raise typer.Exit(0 if result["ok"] else 1)


@model_app.command("convert")
def convert_cmd(name: str, owner: OwnerOpt = None) -> None:
    """Convert a DeepRacer (TensorFlow) model's weights so it can race (needs the tensorflow extra)."""

    async def work(store: Any, owner_id: int | None) -> dict[str, Any]:
        record = await _find(store, owner_id, name)
        if record is None:
            return {"ok": False, "errors": [Problem("FILE_DOES_NOT_EXIST", f"no model {name}").as_json()]}
        out: dict[str, Any] = (await store.convert(record.id)).as_json()
        return out

    result = _local(work, owner)
    if result["ok"]:
        typer.echo(f"converted {name}: weights ready")
    _print_result({**result, "model": None}, False)
    raise typer.Exit(0 if result["ok"] else 1)


@model_app.command("export")
def export_cmd(
    name: str,
    out: Annotated[Path, typer.Option("--out", "-o", help="The .tar.gz to write.")],
    checkpoint: Annotated[str, typer.Option(help="best or last.")] = "last",
    car: Annotated[bool, typer.Option("--car", help="Physical-car bundle instead of the model folder.")] = False,
    owner: OwnerOpt = None,
) -> None:
    """Export the model folder (DeepRacer layout) or a physical-car bundle."""
    if checkpoint not in ("best", "last"):
        raise typer.BadParameter("checkpoint must be best or last")

    async def work(store: Any, owner_id: int | None) -> bool:
        from race_server.models.export import write_car_bundle, write_folder_tar

        record = await _find(store, owner_id, name)
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

    if not _local(work, owner):
        typer.echo(f"error: no model {name}", err=True)
        raise typer.Exit(1)
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
            typer.echo("error: -i imports with the prefix as the name: give -p PREFIX", err=True)
            raise typer.Exit(2)
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
        typer.echo(f"error: {folder} is not a folder", err=True)
        raise typer.Exit(2)
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
            typer.echo(f"error: {server} refused the token ({listed.status_code}: {listed.text[:200]})", err=True)
            raise typer.Exit(1)
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
                typer.echo(f"error: could not wipe {target}: {deleted.text[:200]}", err=True)
                raise typer.Exit(1)
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

