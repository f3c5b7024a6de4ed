"""Export: the virtual model folder as a DeepRacer .tar.gz, and the physical-car bundle.

The folder export holds one checkpoint (best or last) with both pointer files naming it, so the
console, DeepRacer-for-Cloud and Trackside all find it. The car bundle has model_metadata.json at
the root, model.onnx for Trackside's car client and, with the tensorflow extra, agent/model.pb
(a frozen graph a stock DeepRacer car loads).
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Literal

from race_server.db.models import ModelFile
from race_server.models.blobs import BlobStore
from race_server.models.folder import COACH_CHECKPOINT, DEEPRACER_CHECKPOINTS, is_checkpoint_file

Choice = Literal["best", "last"]


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def _add_file(archive: tarfile.TarFile, name: str, path: Path, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = path.stat().st_size
    info.mtime = int(mtime)
    info.mode = 0o644
    with path.open("rb") as handle:
        archive.addfile(info, handle)


def folder_entries(files: list[ModelFile], checkpoints: dict[str, Any], choice: Choice) -> tuple[list[ModelFile], str]:
    """The stored files an export holds, and the checkpoint name its pointers give."""
    chosen = checkpoints[choice]
    wanted = set(chosen["files"])
    keep = [
        f
        for f in files
        if f.path not in (COACH_CHECKPOINT, DEEPRACER_CHECKPOINTS)
        and (not is_checkpoint_file(f.path) or f.path in wanted)
    ]
    return keep, str(chosen["name"])


def write_folder_tar(
    blobs: BlobStore,
    files: list[ModelFile],
    checkpoints: dict[str, Any],
    choice: Choice,
    out: BinaryIO,
    hyperparameters: dict[str, Any] | None = None,
) -> None:
    keep, name = folder_entries(files, checkpoints, choice)
    now = time.time()
    paths = {f.path for f in keep}
    # Level 1: weights barely compress, and level 9 kept a 40 MB export busy for tens of seconds.
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=1) as archive:
        for f in keep:
            _add_file(archive, f.path, blobs.path(f.sha256), now)
        _add_bytes(archive, COACH_CHECKPOINT, (name + "\n").encode(), now)
        pointers = {"best_checkpoint": {"name": name}, "last_checkpoint": {"name": name}}
        _add_bytes(archive, DEEPRACER_CHECKPOINTS, json.dumps(pointers).encode(), now)
        # deepracer-on-aws reads ip/hyperparameters.json, seed 001 the root: give both
        if hyperparameters is not None:
            data = json.dumps(hyperparameters, indent=2).encode()
            for place in ("hyperparameters.json", "ip/hyperparameters.json"):
                if place not in paths:
                    _add_bytes(archive, place, data, now)


PbWriter = Callable[[Path, Path], None]  # (model folder, out .pb)


def write_car_bundle(
    folder: Path,
    checkpoint_name: str,
    out: BinaryIO,
    *,
    onnx_writer: Callable[[Path, str, Path], None],
    pb_writer: Callable[[Path, str, Path], None] | None,
    work: Path,
) -> list[str]:
    """Build the bundle from a materialised model folder; returns the names it holds."""
    onnx_path = work / "model.onnx"
    onnx_writer(folder, checkpoint_name, onnx_path)
    names = ["model_metadata.json", "model.onnx"]
    now = time.time()
    pb_path: Path | None = None
    if pb_writer is not None:
        pb_path = work / "model.pb"
        pb_writer(folder, checkpoint_name, pb_path)
        names.append("agent/model.pb")
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        _add_file(archive, "model_metadata.json", folder / "model_metadata.json", now)
        _add_file(archive, "model.onnx", onnx_path, now)
        if pb_path is not None:
            _add_file(archive, "agent/model.pb", pb_path, now)
    return names
