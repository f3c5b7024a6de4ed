"""DeepRacer training and evaluation metrics JSON (``metrics/training/training-*.json``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from race_server.sim.episode import METRICS_STATUS


def metrics_status(word: str) -> str:
    """Metrics spelling ("Off track") of a simtrace status word ("off_track"); passes metrics words through."""
    return METRICS_STATUS.get(word, word)


def training_entry(
    *,
    reward_score: float,
    start_ms: int,
    end_ms: int,
    episode: int,
    trial: int,
    phase: str,
    completion_percentage: float,
    episode_status: str,
) -> dict[str, Any]:
    return {
        "reward_score": round(float(reward_score)),
        "metric_time": int(end_ms),
        "start_time": int(start_ms),
        "elapsed_time_in_milliseconds": int(end_ms - start_ms),
        "episode": int(episode),
        "trial": int(trial),
        "phase": phase,
        "completion_percentage": round(float(completion_percentage)),
        "episode_status": metrics_status(episode_status),
    }


def evaluation_entry(
    *,
    trial: int,
    start_ms: int,
    end_ms: int,
    completion_percentage: float,
    episode_status: str,
    counts: Mapping[str, int],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "completion_percentage": round(float(completion_percentage)),
        "metric_time": int(end_ms),
        "start_time": int(start_ms),
        "elapsed_time_in_milliseconds": int(end_ms - start_ms),
        "episode_status": metrics_status(episode_status),
    }
    for key in ("crash_count", "immobilized_count", "off_track_count", "reversed_count", "reset_count"):
        out[key] = int(counts.get(key, 0))
    out["trial"] = int(trial)
    return out


def write_training_metrics(
    path: Path, entries: Sequence[Mapping[str, Any]], best_model_metric: str = "progress"
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"metrics": list(entries), "version": 2, "best_model_metric": best_model_metric}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)


def write_evaluation_metrics(path: Path, entries: Sequence[Mapping[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"metrics": list(entries)}))


def read_metrics(path: Path) -> list[dict[str, Any]]:
    doc = json.loads(path.read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("metrics"), list):
        raise ValueError(f"{path}: not a DeepRacer metrics file (no 'metrics' list)")
    return list(doc["metrics"])
