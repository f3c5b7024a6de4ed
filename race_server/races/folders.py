"""Where a race's files live in the data dir, named once so that writing them, serving them and
deleting them with the race agree: its runs' logs (simtrace, metrics, classic evaluations) and its
video recordings."""

from __future__ import annotations

from pathlib import Path


def race_dir(data_dir: Path, race_id: int) -> Path:
    return Path(data_dir) / "races" / str(race_id)


def run_dir(data_dir: Path, race_id: int, run_id: int) -> Path:
    return race_dir(data_dir, race_id) / "runs" / str(run_id)


def recordings_dir(data_dir: Path, race_id: int) -> Path:
    return Path(data_dir) / "recordings" / f"race-{race_id}"


def race_folders(data_dir: Path, race_id: int) -> tuple[Path, Path]:
    return race_dir(data_dir, race_id), recordings_dir(data_dir, race_id)
