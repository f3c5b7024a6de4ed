"""Validate a model folder on disk: every problem at once, with the file and field at fault.

Pure apart from reading the folder. Checkpoint weights are checked by an injected callable, since
reading them needs torch (or TensorFlow), which lives in ``trainer``.
"""

from __future__ import annotations

import ast
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from race_server.models.folder import (
    CheckpointRef,
    Checkpoints,
    Limits,
    Problem,
    is_checkpoint_file,
    is_json_or_yaml,
    is_junk,
    resolve_checkpoints,
)
from race_server.models.hyperparameters import HyperparameterError, parse_hyperparameters, unused_report
from race_server.models.metadata import validate_model_metadata
from race_server.sim.metadata import ModelMetadata

WeightsCheck = Callable[[Path, ModelMetadata, CheckpointRef], list[Problem]]
METADATA_PLACES = ("model_metadata.json", "model/model_metadata.json")
HYPERPARAMETER_PLACES = ("hyperparameters.json", "ip/hyperparameters.json")
TRAINING_PARAMS = "training_params.yaml"
REWARD_FUNCTION = "reward_function.py"


@dataclass
class FolderReport:
    root: Path
    files: dict[str, int] = field(default_factory=dict)  # relative path -> bytes, junk left out
    problems: list[Problem] = field(default_factory=list)
    metadata: ModelMetadata | None = None
    metadata_raw: dict[str, Any] | None = None
    hyperparameters: dict[str, Any] | None = None
    training_params: dict[str, Any] | None = None
    checkpoints: Checkpoints | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def weights_format(self) -> str | None:
        return self.checkpoints.last.kind if self.checkpoints else None


def json_depth(text: str) -> int:
    """Deepest bracket nesting outside strings, found without recursion (json.loads recurses)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def safe_json_loads(text: str, max_depth: int) -> Any:
    depth = json_depth(text)
    if depth > max_depth:
        raise ValueError(f"nested {depth} levels deep; at most {max_depth} allowed")
    return json.loads(text)


class _NoAliasLoader(yaml.SafeLoader):
    """Safe loading (no python/* tags) that also refuses anchors and aliases: real
    training_params.yaml files never use them, and aliases are how YAML bombs are built."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, "aliases are not allowed", event.start_mark)
        return super().compose_node(parent, index)


def safe_yaml_loads(text: str) -> Any:
    return yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader subclass: no python/* tags


def model_root(root: Path) -> Path:
    """Archives often wrap the folder in one directory of its own: look inside it."""
    entries = [e for e in root.iterdir() if not is_junk(e.name)]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink() and entries[0].name != "model":
        return entries[0]
    return root


def scan_folder(root: Path, limits: Limits) -> tuple[dict[str, int], list[Problem]]:
    """Regular files under root, without following links (a link could point anywhere)."""
    files: dict[str, int] = {}
    problems: list[Problem] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            path = base / name
            rel = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode):
                continue
            if is_junk(rel):
                continue
            if not stat.S_ISREG(info.st_mode):
                problems.append(Problem("UNSAFE_ARCHIVE_ENTRY", f"{rel} is a link or special file", rel))
                continue
            files[rel] = info.st_size
            if len(files) > limits.files:
                problems.append(Problem("ARCHIVE_LIMIT_EXCEEDED", f"more than {limits.files} files in the folder", rel))
                return files, problems
    return files, problems


def _size_problems(files: dict[str, int], limits: Limits) -> list[Problem]:
    problems: list[Problem] = []
    total = sum(files.values())
    if total > limits.folder_bytes:
        problems.append(
            Problem(
                "MODEL_TAR_FILE_SIZE_LIMIT_EXCEEDED",
                f"the folder holds {total} bytes; the limit is {limits.folder_bytes} bytes (1 GB)",
            )
        )
    for rel, size in files.items():
        if is_json_or_yaml(rel) and size > limits.json_yaml_bytes:
            problems.append(
                Problem(
                    "JSON_YAML_FILE_SIZE_LIMIT_EXCEEDED",
                    f"{rel} is {size} bytes; JSON and YAML files may be at most {limits.json_yaml_bytes} bytes",
                    rel,
                )
            )
        elif is_checkpoint_file(rel) and size > limits.checkpoint_file_bytes:
            problems.append(
                Problem(
                    "CHECKPOINT_FILE_SIZE_LIMIT_EXCEEDED",
                    f"{rel} is {size} bytes; a checkpoint file may be at most {limits.checkpoint_file_bytes} bytes",
                    rel,
                )
            )
    return problems


def _read_text(root: Path, rel: str, problems: list[Problem]) -> str | None:
    try:
        return (root / rel).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        problems.append(Problem("MODEL_VALIDATION_SERVICE_ERROR", f"{rel} is not UTF-8 text ({error.reason})", rel))
        return None


def _load_json(root: Path, rel: str, limits: Limits, problems: list[Problem]) -> Any:
    text = _read_text(root, rel, problems)
    if text is None:
        return None
    try:
        return safe_json_loads(text, limits.json_depth)
    except ValueError as error:
        problems.append(Problem("INVALID_JSON", f"{rel} is not valid JSON: {error}", rel))
        return None


def validate_hyperparameters(
    raw: Any, rel: str, metadata: ModelMetadata | None
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Every bad key of a hyperparameters.json (the trainer's parser stops at the first, so each key
    is also checked alone), the values with defaults when all are good, and notes on unused keys."""
    algorithm = metadata.training_algorithm if metadata is not None else "clipped_ppo"
    if not isinstance(raw, dict):
        return None, [Problem("INVALID_HYPERPARAMETERS", "the file must hold a JSON object", rel)]
    problems: list[Problem] = []
    for key, value in raw.items():
        try:
            parse_hyperparameters({key: value}, algorithm)
        except HyperparameterError as error:
            problems.append(Problem("INVALID_HYPERPARAMETERS", str(error), rel, key))
    if problems:
        return None, problems
    try:
        parsed = parse_hyperparameters(raw, algorithm)
    except HyperparameterError as error:
        return None, [Problem("INVALID_HYPERPARAMETERS", str(error), rel, error.key)]
    notes = [Problem("SETTING_NOT_USED", note, rel, severity="warning") for note in unused_report(parsed, algorithm)]
    return parsed.to_json(), notes


def validate_folder(
    root: Path, limits: Limits | None = None, weights_check: WeightsCheck | None = None
) -> FolderReport:
    limits = limits or Limits()
    root = model_root(root)
    report = FolderReport(root=root)
    files, problems = scan_folder(root, limits)
    report.files = files
    problems += _size_problems(files, limits)
    too_big = {p.file for p in problems if p.code.endswith("SIZE_LIMIT_EXCEEDED")}
    present = set(files)

    metadata_rel = next((p for p in METADATA_PLACES if p in present), None)
    if metadata_rel is None:
        problems.append(
            Problem("FILE_DOES_NOT_EXIST", "model_metadata.json is missing from the folder root", "model_metadata.json")
        )
    elif metadata_rel not in too_big:
        raw = _load_json(root, metadata_rel, limits, problems)
        if raw is not None:
            metadata, found = validate_model_metadata(raw)
            problems += [Problem(p.code, p.detail, metadata_rel, p.field, p.severity) for p in found]
            report.metadata = metadata
            report.metadata_raw = raw if isinstance(raw, dict) else None

    if REWARD_FUNCTION not in present:
        problems.append(
            Problem("FILE_DOES_NOT_EXIST", "reward_function.py is missing from the folder root", REWARD_FUNCTION)
        )
    else:
        _check_reward_function(root, limits, problems)

    hp_rel = next((p for p in HYPERPARAMETER_PLACES if p in present), None)
    if hp_rel is None:
        problems.append(
            Problem(
                "MISSING_OPTIONAL_FILE",
                "no hyperparameters.json at the root or in ip/; Trackside's defaults are used",
                "hyperparameters.json",
                severity="warning",
            )
        )
        report.hyperparameters, found = validate_hyperparameters({}, "hyperparameters.json", report.metadata)
        problems += [p for p in found if p.severity == "error"]
    elif hp_rel not in too_big:
        raw = _load_json(root, hp_rel, limits, problems)
        if raw is not None:
            report.hyperparameters, found = validate_hyperparameters(raw, hp_rel, report.metadata)
            problems += found

    if TRAINING_PARAMS not in present:
        problems.append(
            Problem(
                "MISSING_OPTIONAL_FILE",
                "no training_params.yaml; track and car settings take defaults",
                TRAINING_PARAMS,
                severity="warning",
            )
        )
    elif TRAINING_PARAMS not in too_big:
        text = _read_text(root, TRAINING_PARAMS, problems)
        if text is not None:
            try:
                params = safe_yaml_loads(text)
            except (yaml.YAMLError, RecursionError) as error:
                problems.append(Problem("INVALID_YAML", f"{TRAINING_PARAMS}: {error}", TRAINING_PARAMS))
            else:
                if isinstance(params, dict):
                    report.training_params = params
                elif params is not None:
                    problems.append(Problem("INVALID_YAML", f"{TRAINING_PARAMS} must hold a mapping", TRAINING_PARAMS))

    def read(rel: str) -> str:
        if rel in too_big:
            raise ValueError(f"{rel} is over the size limit")
        return (root / rel).read_text(encoding="utf-8", errors="replace")

    resolution = resolve_checkpoints(present, read, lambda text: safe_json_loads(text, limits.json_depth))
    problems += resolution.problems
    report.checkpoints = resolution.checkpoints
    if weights_check is not None and report.checkpoints is not None and report.metadata is not None and not too_big:
        refs = {
            report.checkpoints.best.name: report.checkpoints.best,
            report.checkpoints.last.name: report.checkpoints.last,
        }
        for ref in refs.values():
            problems += weights_check(root, report.metadata, ref)
    report.problems = problems
    return report


def _check_reward_function(root: Path, limits: Limits, problems: list[Problem]) -> None:
    path = root / REWARD_FUNCTION
    if path.stat().st_size > limits.json_yaml_bytes:
        problems.append(
            Problem(
                "INVALID_REWARD_FUNCTION", f"{REWARD_FUNCTION} is over {limits.json_yaml_bytes} bytes", REWARD_FUNCTION
            )
        )
        return
    text = _read_text(root, REWARD_FUNCTION, problems)
    if text is None:
        return
    try:
        tree = ast.parse(text, REWARD_FUNCTION)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        problems.append(
            Problem("INVALID_REWARD_FUNCTION", f"{REWARD_FUNCTION} does not parse: {error}", REWARD_FUNCTION)
        )
        return
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    if "reward_function" not in names:
        problems.append(
            Problem(
                "INVALID_REWARD_FUNCTION",
                "reward_function.py defines no reward_function(params)",
                REWARD_FUNCTION,
                "reward_function",
            )
        )
