"""The car bundle a physical car downloads for a run: model_metadata.json + model.onnx in a
tar.gz (the layout of ``race_server.models.export.write_car_bundle``), built from the files the
model store already holds, so a launch needs no torch. Cached by content under
``<data dir>/car-bundles/<sha256>.tar.gz``."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0  # same model, same bytes, same digest
    archive.addfile(info, io.BytesIO(data))


def build_bundle(metadata: dict[str, Any], onnx_path: Path, out_dir: Path) -> tuple[Path, str]:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        _add(archive, "model_metadata.json", json.dumps(metadata, sort_keys=True).encode())
        _add(archive, "model.onnx", onnx_path.read_bytes())
    data = gzip.compress(buffer.getvalue(), compresslevel=6, mtime=0)
    digest = hashlib.sha256(data).hexdigest()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{digest}.tar.gz"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path, digest
