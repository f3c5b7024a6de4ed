"""Model folders for tests: Trackside-trained (torch weights) and DeepRacer-shaped ones."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from race_server.models.weights import policy_network
from race_server.sim.metadata import default_model_metadata, parse_model_metadata
from trainer.checkpoint import FORMAT

REWARD = "def reward_function(params):\n    return 1.0 if params['all_wheels_on_track'] else 1e-3\n"
TRAINING_PARAMS = "WORLD_NAME: reInvent2019_track\nRACE_TYPE: TIME_TRIAL\nMODEL_S3_PREFIX: my-model\n"
HYPERPARAMETERS = {"batch_size": 64, "num_epochs": 10, "lr": 0.0003, "discount_factor": 0.999}


def write_trackside_folder(
    root: Path,
    metadata: dict[str, Any] | None = None,
    checkpoints: tuple[str, ...] = ("3_Step-300.ckpt",),
    seed: int = 0,
    pointer: str = "both",
) -> Path:
    """A folder as Trackside's trainer writes it; weights from a seeded torch generator."""
    meta = metadata or default_model_metadata()
    (root / "model").mkdir(parents=True)
    (root / "model_metadata.json").write_text(json.dumps(meta))
    (root / "reward_function.py").write_text(REWARD)
    (root / "hyperparameters.json").write_text(json.dumps(HYPERPARAMETERS))
    (root / "training_params.yaml").write_text(TRAINING_PARAMS)
    torch.manual_seed(seed)
    for name in checkpoints:
        net = policy_network(parse_model_metadata(meta))
        for param in net.parameters():
            torch.nn.init.normal_(param, 0.0, 0.05)
        torch.save({"format": FORMAT, "model": net.state_dict()}, root / "model" / f"{name}.pt")
    if pointer in ("both", "coach"):
        (root / "model" / ".coach_checkpoint").write_text(checkpoints[-1] + "\n")
    if pointer in ("both", "json"):
        (root / "model" / "deepracer_checkpoints.json").write_text(
            json.dumps({"best_checkpoint": {"name": checkpoints[0]}, "last_checkpoint": {"name": checkpoints[-1]}})
        )
    return root


def write_tensorflow_folder(
    root: Path, name: str = "13_Step-25173.ckpt", metadata: dict[str, Any] | None = None
) -> Path:
    """Console-shaped folder with TensorFlow checkpoint files (contents are placeholders)."""
    (root / "model").mkdir(parents=True)
    (root / "ip").mkdir()
    (root / "model_metadata.json").write_text(json.dumps(metadata or default_model_metadata()))
    (root / "reward_function.py").write_text(REWARD)
    (root / "ip" / "hyperparameters.json").write_text(json.dumps(HYPERPARAMETERS))
    (root / "training_params.yaml").write_text(TRAINING_PARAMS)
    (root / "model" / ".coach_checkpoint").write_text(name + "\n")
    for suffix in (".index", ".data-00000-of-00001", ".meta"):
        (root / "model" / f"{name}{suffix}").write_bytes(b"\x00placeholder")
    return root


def tar_folder(folder: Path, out: Path, arcroot: str = "") -> Path:
    with tarfile.open(out, "w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.add(path, arcname=f"{arcroot}{path.relative_to(folder).as_posix()}")
    return out


def zip_folder(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return out


def tar_bytes(entries: Sequence[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode, format=tarfile.GNU_FORMAT) as archive:  # type: ignore[call-overload]
        for info, data in entries:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def file_entry(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data
