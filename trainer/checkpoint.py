"""The DeepRacer model folder: writer and reader (see SPEC "Model folder").

Trackside checkpoints are ``model/<iteration>_Step-<steps>.ckpt.pt`` torch files holding only
tensors and plain values, loaded with ``weights_only=True``. ``.coach_checkpoint`` names the last
checkpoint; ``deepracer_checkpoints.json`` names the best (by mean progress, then lap time) and last.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from race_server.models.hyperparameters import Hyperparameters, parse_hyperparameters
from race_server.sim.metadata import ModelMetadata, parse_model_metadata

CHECKPOINT_RE = re.compile(r"^(\d+)_Step-(\d+)\.ckpt$")
FORMAT = "trackside-checkpoint-1"
KEEP_LAST = 4


class ModelFolderError(ValueError):
    """The folder is not a usable model folder; the message names the file."""


def checkpoint_name(iteration: int, steps: int) -> str:
    return f"{iteration}_Step-{steps}.ckpt"


def write_static_files(
    folder: Path,
    metadata_raw: dict[str, Any],
    reward_source: str,
    hp: Hyperparameters,
    training_params: dict[str, Any],
) -> None:
    """Everything but checkpoints: metadata, reward, hyperparameters (root and ip/), training params."""
    (folder / "model").mkdir(parents=True, exist_ok=True)
    (folder / "ip").mkdir(exist_ok=True)
    (folder / "model_metadata.json").write_text(json.dumps(metadata_raw, indent=2))
    (folder / "model" / "model_metadata.json").write_text(json.dumps(metadata_raw, indent=2))
    (folder / "reward_function.py").write_text(reward_source)
    hp_text = json.dumps(hp.to_json(), indent=2)
    (folder / "hyperparameters.json").write_text(hp_text)
    (folder / "ip" / "hyperparameters.json").write_text(hp_text)
    (folder / "training_params.yaml").write_text(yaml.safe_dump(training_params, sort_keys=False))


def _pointer_json(folder: Path) -> dict[str, Any]:
    path = folder / "model" / "deepracer_checkpoints.json"
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    return {}


def _better(score: tuple[float, float], best: dict[str, Any] | None) -> bool:
    if best is None:
        return True
    progress, lap = score
    b_progress = float(best.get("avg_comp_pct", -1.0))
    b_lap = float(best.get("avg_eval_time", float("inf")) or float("inf"))
    return progress > b_progress or (progress == b_progress and lap < b_lap)


def save_checkpoint(
    folder: Path, iteration: int, steps: int, state: dict[str, Any], *, progress: float, lap_time: float | None
) -> tuple[str, bool]:
    """Write the checkpoint and the pointers; returns (name, is_new_best)."""
    model_dir = folder / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(iteration, steps)
    tmp = model_dir / f"{name}.pt.tmp"
    torch.save({"format": FORMAT, **state}, tmp)
    tmp.replace(model_dir / f"{name}.pt")
    entry = {
        "name": name,
        "time_stamp": round(time.time(), 3),
        "avg_comp_pct": round(float(progress), 4),
        "avg_eval_time": None if lap_time is None else round(float(lap_time) * 1000.0),
    }
    pointers = _pointer_json(folder)
    best = pointers.get("best_checkpoint")
    lap = float("inf") if lap_time is None else float(lap_time)
    is_best = _better((round(float(progress), 4), lap), best)
    if is_best:
        pointers["best_checkpoint"] = entry
    pointers["last_checkpoint"] = entry
    (model_dir / "deepracer_checkpoints.json").write_text(json.dumps(pointers, indent=2))
    (model_dir / ".coach_checkpoint").write_text(name + "\n")
    _prune(model_dir, keep={pointers["best_checkpoint"]["name"], name})
    return name, is_best


def _prune(model_dir: Path, keep: set[str]) -> None:
    found = []
    for path in model_dir.glob("*.ckpt.pt"):
        m = CHECKPOINT_RE.match(path.name[: -len(".pt")])
        if m:
            found.append((int(m.group(1)), path))
    found.sort()
    recent = {p.name[: -len(".pt")] for _, p in found[-KEEP_LAST:]}
    for _, path in found:
        if path.name[: -len(".pt")] not in keep | recent:
            path.unlink()


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFolderError(f"{path.name}: unreadable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ModelFolderError(f"{path.name}: not a Trackside checkpoint")
    return state


@dataclass(frozen=True)
class ModelFolder:
    path: Path
    metadata_raw: dict[str, Any]
    metadata: ModelMetadata
    hyperparameters: Hyperparameters
    reward_source: str
    training_params: dict[str, Any]
    last_checkpoint: str
    best_checkpoint: str

    def checkpoint_path(self, which: str = "last") -> Path:
        if which not in ("last", "best"):
            raise ValueError(f"checkpoint = {which!r}; allowed: last, best")
        name = self.last_checkpoint if which == "last" else self.best_checkpoint
        return self.path / "model" / f"{name}.pt"


def read_model_folder(folder: Path) -> ModelFolder:
    folder = Path(folder)
    meta_path = folder / "model_metadata.json"
    if not meta_path.exists():
        raise ModelFolderError(f"{meta_path}: missing (FILE_DOES_NOT_EXIST)")
    metadata_raw = json.loads(meta_path.read_text())
    metadata = parse_model_metadata(metadata_raw)
    hp_raw: dict[str, Any] = {}
    for candidate in (folder / "hyperparameters.json", folder / "ip" / "hyperparameters.json"):
        if candidate.exists():
            hp_raw = json.loads(candidate.read_text())
            break
    hp = parse_hyperparameters(hp_raw, metadata.training_algorithm)
    reward_path = folder / "reward_function.py"
    reward = reward_path.read_text() if reward_path.exists() else ""
    params_path = folder / "training_params.yaml"
    params = yaml.safe_load(params_path.read_text()) if params_path.exists() else {}
    pointers = _pointer_json(folder)
    coach = folder / "model" / ".coach_checkpoint"
    if pointers.get("last_checkpoint"):
        last = str(pointers["last_checkpoint"]["name"])
        best = str(pointers.get("best_checkpoint", pointers["last_checkpoint"])["name"])
    elif coach.exists():
        last = best = coach.read_text().strip()
    else:
        raise ModelFolderError(f"{folder / 'model'}: no .coach_checkpoint or deepracer_checkpoints.json")
    for name in {last, best}:
        if not (folder / "model" / f"{name}.pt").exists():
            raise ModelFolderError(
                f"{folder / 'model' / name}.pt: checkpoint file missing (CHECKPOINT_FILES_DOES_NOT_EXIST)"
            )
    return ModelFolder(folder, metadata_raw, metadata, hp, reward, params or {}, last, best)
