"""The model store: PostgreSQL records plus content-addressed blobs, with atomic imports.

An import is staged in ``<data_dir>/staging/<id>``, validated there, its files hashed into the blob
store, and only then one transaction inserts the record and its file list. A failed import rolls
back and removes the blobs it added; an interrupted one (a crash) leaves a staging folder and
perhaps unreferenced blobs, which ``recover()`` sweeps at start-up. Nothing is visible before the
commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from race_server.db import models as repo
from race_server.models.archive import ArchiveError, ArchiveLimits, extract_archive
from race_server.models.blobs import BlobStore
from race_server.models.folder import CheckpointRef, Checkpoints, Limits, Problem, is_checkpoint_file
from race_server.models.validation import FolderReport, WeightsCheck, validate_folder

NAME = re.compile(r"^[a-zA-Z0-9-]+$")
MAX_NAME = 63
CONVERT_HINT = "pip install 'trackside[tensorflow]' && trackside model convert {name}"


def name_problems(name: str) -> list[Problem]:
    if NAME.match(name) and len(name) <= MAX_NAME:
        return []
    return [
        Problem(
            "INVALID_MODEL_NAME",
            f"{name[:80]!r} is not allowed: use letters, digits and hyphens (^[a-zA-Z0-9-]+$), under 64 characters",
            field="name",
        )
    ]


def sanitize_name(text: str) -> str:
    cleaned = re.sub(r"[^a-zA-Z0-9-]+", "-", text).strip("-")
    return (cleaned or "model")[:MAX_NAME]


def free_name(base: str, taken: set[str]) -> str:
    """``base``, else ``base-2``, ``base-3``, ... : the first one not in ``taken`` (compared
    case-insensitively, as names are unique per owner), cut to fit ``MAX_NAME``."""
    used = {t.lower() for t in taken}
    if base.lower() not in used:
        return base
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = base[: MAX_NAME - len(suffix)] + suffix
        if candidate.lower() not in used:
            return candidate
        n += 1


@dataclass
class ImportResult:
    ok: bool
    model: repo.ModelRecord | None
    problems: list[Problem] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "model": self.model.as_json() if self.model else None,
            "errors": [p.as_json() for p in self.problems if p.severity == "error"],
            "warnings": [p.as_json() for p in self.problems if p.severity == "warning"],
        }


def _ref_json(ref: CheckpointRef) -> dict[str, Any]:
    return {
        "name": ref.name,
        "iteration": ref.iteration,
        "steps": ref.steps,
        "kind": ref.kind,
        "files": list(ref.files),
    }


def checkpoints_json(checkpoints: Checkpoints) -> dict[str, Any]:
    return {"best": _ref_json(checkpoints.best), "last": _ref_json(checkpoints.last), "source": checkpoints.source}


def _kept_files(report: FolderReport) -> dict[str, str]:
    """Stored path -> path in the staged folder: every file but checkpoints other than best/last
    (as the console copies only those), with model_metadata.json also at the root."""
    assert report.checkpoints is not None
    wanted = set(report.checkpoints.files())
    kept = {rel: rel for rel in report.files if not is_checkpoint_file(rel) or rel in wanted}
    if "model_metadata.json" not in kept and "model/model_metadata.json" in kept:
        kept["model_metadata.json"] = "model/model_metadata.json"
    return kept


def folder_checksum(files: list[repo.ModelFile]) -> str:
    sha = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.path):
        sha.update(f"{f.path}\0{f.sha256}\n".encode())
    return sha.hexdigest()


TfConverter = Callable[[Path, Any, CheckpointRef, Path], Path]


@dataclass(frozen=True)
class RaceFiles:
    """What a race host needs to drive a model: its ``model.onnx`` and ``model_metadata.json``.

    ``onnx_path`` is the stored file itself (content-addressed, never rewritten): open it, never
    write to it."""

    model_id: int
    metadata: dict[str, Any]
    onnx_path: Path | None
    weights: str
    reward_path: Path | None = None  # the stored reward_function.py (scores a LIVE run's steps)

    @property
    def problem(self) -> str | None:
        """Why the model cannot race (the LIVE queue's red row), or None."""
        if self.onnx_path is None:
            return "the model has no model.onnx for racing (export or retrain it)"
        if self.weights != "ready":
            return "the model's weights need converting before it can race"
        return None


def _default_tf_converter() -> TfConverter | None:
    try:
        from trainer.tf_convert import convert_checkpoint, tensorflow_available
    except ImportError:
        return None
    return convert_checkpoint if tensorflow_available() else None


def _default_weights_check() -> WeightsCheck | None:
    try:
        from race_server.models.weights import check_weights
    except ImportError:
        return None
    checker: WeightsCheck = check_weights
    return checker


class ModelStore:
    def __init__(
        self,
        pool: asyncpg.Pool,
        data_dir: Path,
        *,
        limits: Limits | None = None,
        archive_limits: ArchiveLimits | None = None,
        weights_check: WeightsCheck | bool | None = True,
        tf_converter: TfConverter | bool | None = True,
    ) -> None:
        self.pool = pool
        self.data_dir = data_dir
        self.blobs = BlobStore(data_dir / "blobs")
        self.staging_root = data_dir / "staging"
        self.staging_root.mkdir(parents=True, exist_ok=True)
        self.limits = limits or Limits()
        self.archive_limits = archive_limits or ArchiveLimits(total_bytes=self.limits.folder_bytes)
        self.weights_check = _default_weights_check() if weights_check is True else weights_check or None
        self.tf_converter = _default_tf_converter() if tf_converter is True else tf_converter or None

    def new_staging(self) -> Path:
        return self.staging_root / uuid.uuid4().hex

    async def recover(self) -> int:
        """After a crash: drop half-made records and staging folders, then unreferenced blobs."""
        for leftover in self.staging_root.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)
        async with self.pool.acquire() as conn:
            for model_id in await repo.stale_imports(conn):
                await repo.delete(conn, model_id)
            referenced = await repo.referenced(conn)
        return await asyncio.to_thread(self.blobs.collect_garbage, referenced)

    async def import_archive(self, owner_id: int, name: str, archive: Path, description: str = "") -> ImportResult:
        problems = name_problems(name)
        staging = self.new_staging()
        try:
            try:
                await asyncio.to_thread(extract_archive, archive, staging, self.archive_limits)
            except ArchiveError as error:
                return ImportResult(False, None, [*problems, error.problem])
            return await self._import_staged(owner_id, name, staging, description, problems)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)

    async def import_folder(self, owner_id: int, name: str, folder: Path, description: str = "") -> ImportResult:
        """Import a folder on this machine; it is read, never changed."""
        return await self._import_staged(owner_id, name, folder, description, name_problems(name), copy=True)

    async def import_staged(self, owner_id: int, name: str, staging: Path, description: str = "") -> ImportResult:
        """Import a folder already unpacked into a staging dir of ours (it is consumed)."""
        try:
            return await self._import_staged(owner_id, name, staging, description, name_problems(name))
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)

    async def validate(self, folder: Path) -> FolderReport:
        return await asyncio.to_thread(validate_folder, folder, self.limits, self.weights_check)

    async def _import_staged(
        self,
        owner_id: int,
        name: str,
        folder: Path,
        description: str,
        problems: list[Problem],
        copy: bool = False,
        source: str | None = None,
    ) -> ImportResult:
        report = await self.validate(folder)
        problems = [*problems, *report.problems]
        if not name_problems(name):
            async with self.pool.acquire() as conn:
                if await repo.by_name(conn, owner_id, name) is not None:
                    problems.append(Problem("MODEL_NAME_TAKEN", f"you already have a model named {name}", field="name"))
        if any(p.severity == "error" for p in problems):
            return ImportResult(False, None, problems)
        assert report.metadata_raw is not None and report.checkpoints is not None
        kept = _kept_files(report)
        weights = "ready"
        if source is None:
            source = "trackside" if report.checkpoints.last.kind == "trackside" else "deepracer"
        checkpoints = report.checkpoints
        converted: dict[str, Path] = {}
        if report.checkpoints.last.kind == "tensorflow":
            if self.tf_converter is None:
                weights = "needs_conversion"
                problems.append(
                    Problem(
                        "WEIGHTS_NEED_CONVERSION",
                        "the checkpoint is TensorFlow's; the model keeps its settings for cloning, and races once "
                        f"converted: {CONVERT_HINT.format(name=name)}",
                        checkpoints.last.files[0],
                        severity="warning",
                    )
                )
            else:
                work = self.new_staging()
                work.mkdir(parents=True)
                try:
                    converted, checkpoints = await self._convert(report, checkpoints, work)
                except Exception as error:  # conversion refuses a checkpoint that is not the described network
                    await asyncio.to_thread(shutil.rmtree, work, True)
                    problems.append(
                        Problem("MODEL_VALIDATION_SERVICE_ERROR", f"{error}"[:500], checkpoints.last.files[0])
                    )
                    return ImportResult(False, None, problems)
        try:
            return await self._commit(
                owner_id=owner_id,
                name=name,
                description=description,
                root=report.root,
                kept=kept,
                extra=converted,
                source=source,
                weights=weights,
                report=report,
                checkpoints=checkpoints,
                problems=problems,
                move=not copy,
            )
        finally:
            if converted:
                await asyncio.to_thread(shutil.rmtree, next(iter(converted.values())).parent, True)

    async def _convert(
        self, report: FolderReport, checkpoints: Checkpoints, work: Path
    ) -> tuple[dict[str, Path], Checkpoints]:
        assert self.tf_converter is not None
        out: dict[str, Path] = {}
        refs: dict[str, CheckpointRef] = {}
        for ref in {checkpoints.best.name: checkpoints.best, checkpoints.last.name: checkpoints.last}.values():
            pt = await asyncio.to_thread(self.tf_converter, report.root, report.metadata, ref, work / f"{ref.name}.pt")
            rel = f"model/{ref.name}.pt"
            out[rel] = pt
            refs[ref.name] = CheckpointRef(ref.name, ref.iteration, ref.steps, "trackside", (rel, *ref.files))
        return out, Checkpoints(refs[checkpoints.best.name], refs[checkpoints.last.name], checkpoints.source)

    async def _commit(
        self,
        *,
        owner_id: int,
        name: str,
        description: str,
        root: Path,
        kept: dict[str, str],
        extra: dict[str, Path],
        source: str,
        weights: str,
        report: FolderReport,
        checkpoints: Checkpoints,
        problems: list[Problem],
        move: bool,
        parent_id: int | None = None,
    ) -> ImportResult:
        added: list[str] = []

        def store_blobs() -> list[repo.ModelFile]:
            files: list[repo.ModelFile] = []
            moved: dict[str, str] = {}
            sources = {**{stored: root / rel for stored, rel in kept.items()}, **extra}
            for stored, path in sorted(sources.items()):
                if str(path) in moved:  # the same staged file kept under two paths
                    digest = moved[str(path)]
                else:
                    digest, new = self.blobs.put_file(path, move=move)
                    moved[str(path)] = digest
                    if new:
                        added.append(digest)
                files.append(repo.ModelFile(stored, digest, self.blobs.path(digest).stat().st_size))
            return files

        try:
            files = await asyncio.to_thread(store_blobs)
            async with self.pool.acquire() as conn, conn.transaction():
                record = await repo.insert(
                    conn,
                    owner_id=owner_id,
                    name=name,
                    description=description,
                    status="ready",
                    source=source,
                    weights=weights,
                    metadata=report.metadata_raw or {},
                    hyperparameters=report.hyperparameters,
                    training_params=report.training_params,
                    checkpoints=checkpoints_json(checkpoints),
                    warnings=[p.as_json() for p in problems if p.severity == "warning"],
                    files=files,
                    checksum=folder_checksum(files),
                    parent_id=parent_id,
                )
        except repo.DuplicateModelName as error:
            await self._forget(added)
            return ImportResult(False, None, [*problems, Problem("MODEL_NAME_TAKEN", str(error), field="name")])
        except BaseException:
            await asyncio.shield(self._forget(added))
            raise
        return ImportResult(True, record, problems)

    async def _forget(self, digests: list[str]) -> None:
        """Remove blobs this import added, unless another model took them meanwhile."""
        if not digests:
            return
        async with self.pool.acquire() as conn:
            still = await repo.referenced(conn, digests)
        for digest in digests:
            if digest not in still:
                self.blobs.delete(digest)

    async def register_training(
        self, owner_id: int, name: str, folder: Path, description: str = "", *, attempts: int = 5
    ) -> ImportResult:
        """Store a finished training job's model folder (copied; the job keeps its own) as a ready
        model of source "training". A name the owner already uses gets the first free numeric
        suffix (``name-2``, ``name-3``, ...); a name taken between the lookup and the insert is
        retried with the next one."""
        base = sanitize_name(name)
        result = ImportResult(False, None, [])
        for _ in range(attempts):
            async with self.pool.acquire() as conn:
                # suffixed candidates may cut the base short: look up a shorter prefix
                taken = await repo.names_like(conn, owner_id, base[: MAX_NAME - 8])
            free = free_name(base, taken)
            result = await self._import_staged(
                owner_id, free, folder, description, name_problems(free), copy=True, source="training"
            )
            if result.ok or not any(p.code == "MODEL_NAME_TAKEN" for p in result.problems):
                return result
        return result

    async def race_files(self, model_id: int) -> RaceFiles | None:
        """The files a race host loads for this model; None when there is no such model."""
        async with self.pool.acquire() as conn:
            record = await repo.by_id(conn, model_id)
            if record is None:
                return None
            onnx = await repo.file(conn, model_id, "model.onnx")
            reward = await repo.file(conn, model_id, "reward_function.py")
        return RaceFiles(
            model_id=model_id,
            metadata=record.metadata,
            onnx_path=None if onnx is None else self.blobs.path(onnx.sha256),
            weights=record.weights,
            reward_path=None if reward is None else self.blobs.path(reward.sha256),
        )

    async def get(self, model_id: int) -> repo.ModelRecord | None:
        async with self.pool.acquire() as conn:
            return await repo.by_id(conn, model_id)

    async def by_name(self, owner_id: int, name: str) -> repo.ModelRecord | None:
        async with self.pool.acquire() as conn:
            return await repo.by_name(conn, owner_id, name)

    async def list_models(self, owner_id: int | None = None) -> list[repo.ModelRecord]:
        async with self.pool.acquire() as conn:
            return await repo.list_models(conn, owner_id)

    async def files(self, model_id: int) -> list[repo.ModelFile]:
        async with self.pool.acquire() as conn:
            return await repo.files(conn, model_id)

    async def delete(self, model_id: int) -> bool:
        async with self.pool.acquire() as conn:
            if await repo.by_id(conn, model_id) is None:
                return False
            await repo.set_status(conn, model_id, "deleting")
            async with conn.transaction():
                digests = await repo.delete(conn, model_id)
            still = await repo.referenced(conn, digests)
        for digest in set(digests) - still:
            self.blobs.delete(digest)
        return True

    async def materialize(self, model_id: int, dest: Path) -> Path:
        """Write the model's virtual folder to ``dest`` (a new directory)."""
        files = await self.files(model_id)

        def write() -> None:
            dest.mkdir(parents=True)
            for f in files:
                target = dest / f.path
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.blobs.path(f.sha256), target)

        await asyncio.to_thread(write)
        return dest

    async def clone(self, model_id: int, owner_id: int, name: str, description: str = "") -> ImportResult:
        """A new model sharing the source's files (blobs are shared, not copied): the start of
        new training. Any ready model can be cloned, imported ones included."""
        problems = name_problems(name)
        source = await self.get(model_id)
        if source is None or source.status != "ready":
            return ImportResult(False, None, [*problems, Problem("FILE_DOES_NOT_EXIST", f"no ready model {model_id}")])
        if problems:
            return ImportResult(False, None, problems)
        files = await self.files(model_id)
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                record = await repo.insert(
                    conn,
                    owner_id=owner_id,
                    name=name,
                    description=description or f"clone of {source.name}",
                    status="ready",
                    source="clone",
                    weights=source.weights,
                    metadata=source.metadata,
                    hyperparameters=source.hyperparameters,
                    training_params=source.training_params,
                    checkpoints=source.checkpoints,
                    warnings=source.warnings,
                    files=files,
                    checksum=folder_checksum(files),
                    parent_id=source.id,
                )
        except repo.DuplicateModelName as error:
            return ImportResult(False, None, [Problem("MODEL_NAME_TAKEN", str(error), field="name")])
        return ImportResult(True, record, [])

    async def convert(self, model_id: int) -> ImportResult:
        """Convert a TensorFlow model's best and last checkpoints to Trackside weights, in place."""
        from race_server.sim.metadata import parse_model_metadata

        record = await self.get(model_id)
        if record is None:
            return ImportResult(False, None, [Problem("FILE_DOES_NOT_EXIST", f"no model {model_id}")])
        if record.weights == "ready":
            return ImportResult(True, record, [])
        if self.tf_converter is None:
            hint = "TensorFlow is not installed here: pip install 'trackside[tensorflow]'"
            return ImportResult(False, record, [Problem("WEIGHTS_NEED_CONVERSION", hint)])
        work = self.new_staging()
        added: list[str] = []
        try:
            folder = await self.materialize(model_id, work / "folder")
            metadata = parse_model_metadata(record.metadata)
            checkpoints = {**record.checkpoints}
            files: dict[str, repo.ModelFile] = {}
            for which in ("best", "last"):
                ref_json = checkpoints[which]
                ref = CheckpointRef(
                    ref_json["name"], ref_json["iteration"], ref_json["steps"], "tensorflow", tuple(ref_json["files"])
                )
                rel = f"model/{ref.name}.pt"
                if rel not in files:
                    pt = await asyncio.to_thread(self.tf_converter, folder, metadata, ref, work / f"{ref.name}.pt")
                    digest, new = await asyncio.to_thread(self.blobs.put_file, pt, move=True)
                    if new:
                        added.append(digest)
                    files[rel] = repo.ModelFile(rel, digest, self.blobs.path(digest).stat().st_size)
                checkpoints[which] = {**ref_json, "kind": "trackside", "files": [rel, *ref.files]}
            warnings = [w for w in record.warnings if w.get("code") != "WEIGHTS_NEED_CONVERSION"]
            async with self.pool.acquire() as conn, conn.transaction():
                updated = await repo.mark_converted(conn, model_id, list(files.values()), checkpoints, warnings)
        except Exception as error:
            await self._forget(added)
            return ImportResult(False, record, [Problem("MODEL_VALIDATION_SERVICE_ERROR", f"{error}"[:500])])
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
        return ImportResult(True, updated, [])
