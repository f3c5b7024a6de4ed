"""The DeepRacer model folder: layout, limits, checkpoint pointers and the problems users know.

Pure: works on a listing of relative paths and a reader, so folders, archives and browser uploads
share one set of rules. Error codes from the seed's troubleshooting table keep their names and
human sentences; problems the seed has no code for get codes of our own (listed in ``OWN_CODES``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]

# The seed's codes that a folder can produce, with the sentence users know from the console.
SEED_CODES: dict[str, str] = {
    "COACH_CHECKPOINT_DOES_NOT_EXIST": "Coach file doesn't exist: Import model manually.",
    "CHECKPOINT_FILES_DOES_NOT_EXIST": "Checkpoint doesn't exist: Import model manually.",
    "FILE_DOES_NOT_EXIST": "File doesn't exist: Import model manually.",
    "MODEL_TAR_FILE_SIZE_LIMIT_EXCEEDED": "Model file too large: Import model manually.",
    "CHECKPOINT_FILE_SIZE_LIMIT_EXCEEDED": "Checkpoint file too large: Import model manually.",
    "JSON_YAML_FILE_SIZE_LIMIT_EXCEEDED": "Metadata file too large: Import model manually.",
    "MODEL_VALIDATION_SERVICE_ERROR": "Invalid model: Import model manually.",
}

# Trackside's own codes, for problems the seed never names.
OWN_CODES: dict[str, str] = {
    "INVALID_MODEL_METADATA": "model_metadata.json has a value Trackside cannot use.",
    "ALGORITHM_ACTION_SPACE_MISMATCH": "SAC algorithm only works with Continuous action space.",
    "INVALID_HYPERPARAMETERS": "hyperparameters.json has a value Trackside cannot use.",
    "INVALID_JSON": "A JSON file cannot be read.",
    "INVALID_YAML": "A YAML file cannot be read safely.",
    "INVALID_REWARD_FUNCTION": "reward_function.py is not readable Python source.",
    "INVALID_CHECKPOINT_NAME": "A checkpoint name does not follow <iteration>_Step-<steps>.ckpt.",
    "UNSAFE_ARCHIVE_ENTRY": "The upload holds an entry that could write outside the model folder.",
    "ARCHIVE_LIMIT_EXCEEDED": "The upload expands beyond what a model folder may hold.",
    "INVALID_ARCHIVE": "The upload is not a readable .tar.gz or .zip archive.",
    "INVALID_MODEL_NAME": "Model names use letters, digits and hyphens, under 64 characters.",
    "MODEL_NAME_TAKEN": "You already have a model with this name.",
    "MISSING_OPTIONAL_FILE": "An optional file is missing; defaults are used.",
    "TOO_MANY_ACTIONS": "More actions than the DeepRacer console allows.",
    "SETTING_NOT_USED": "A setting is kept but does not apply to this model.",
    "WEIGHTS_NEED_CONVERSION": "TensorFlow weights must be converted before the model can race.",
}

MAX_FOLDER_BYTES = 1024**3
MAX_JSON_YAML_BYTES = 10 * 1024**2
MAX_CHECKPOINT_FILE_BYTES = 512 * 1024**2
MAX_FILES = 10_000
MAX_JSON_DEPTH = 64

CHECKPOINT_NAME = re.compile(r"^(\d+)_Step-(\d+)\.ckpt$")
_TF_DATA = re.compile(r"\.data-(\d{5})-of-(\d{5})$")
_COACH_LINE = re.compile(r'^model_checkpoint_path:\s*"([^"]+)"$')
COACH_CHECKPOINT = "model/.coach_checkpoint"
DEEPRACER_CHECKPOINTS = "model/deepracer_checkpoints.json"
# Finder and archivers on macOS add these; they are never part of a model.
_JUNK = re.compile(r"(^|/)(\.DS_Store|__MACOSX(/.*)?|\._[^/]*|Thumbs\.db)$")


@dataclass(frozen=True)
class Limits:
    folder_bytes: int = MAX_FOLDER_BYTES
    json_yaml_bytes: int = MAX_JSON_YAML_BYTES
    checkpoint_file_bytes: int = MAX_CHECKPOINT_FILE_BYTES
    files: int = MAX_FILES
    json_depth: int = MAX_JSON_DEPTH


@dataclass(frozen=True)
class Problem:
    code: str
    detail: str
    file: str | None = None
    field: str | None = None
    severity: Severity = "error"

    @property
    def message(self) -> str:
        """The seed's (or our) sentence, then what exactly is wrong here."""
        lead = SEED_CODES.get(self.code) or OWN_CODES.get(self.code, "")
        return f"{lead} {self.detail}".strip()

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "field": self.field,
            "severity": self.severity,
        }


def is_junk(path: str) -> bool:
    return _JUNK.search(path) is not None


def is_json_or_yaml(path: str) -> bool:
    return path.lower().endswith((".json", ".yaml", ".yml"))


def is_checkpoint_file(path: str) -> bool:
    base = path.rsplit("/", 1)[-1]
    return path.startswith("model/") and ".ckpt" in base


@dataclass(frozen=True)
class CheckpointRef:
    name: str
    iteration: int
    steps: int
    kind: Literal["tensorflow", "trackside"]
    files: tuple[str, ...]  # relative paths, model/...


@dataclass(frozen=True)
class Checkpoints:
    best: CheckpointRef
    last: CheckpointRef
    source: str  # the pointer file that named them

    def files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.best.files + self.last.files))


@dataclass
class CheckpointResolution:
    checkpoints: Checkpoints | None
    problems: list[Problem] = field(default_factory=list)


def checkpoint_files(name: str, present: set[str]) -> tuple[Literal["tensorflow", "trackside"], tuple[str, ...]] | None:
    """The files that make up checkpoint ``name`` (Trackside's .pt preferred), or None."""
    base = f"model/{name}"
    if f"{base}.pt" in present:
        return "trackside", (f"{base}.pt",)
    shards = sorted(p for p in present if p.startswith(f"{base}.data-") and _TF_DATA.search(p))
    if f"{base}.index" in present and shards:
        totals = {int(m.group(2)) for p in shards if (m := _TF_DATA.search(p))}
        if len(totals) == 1 and len(shards) == totals.pop():
            meta = (f"{base}.meta",) if f"{base}.meta" in present else ()
            return "tensorflow", (f"{base}.index", *shards, *meta)
    return None


def parse_coach_checkpoint(text: str) -> str | None:
    """One line naming the checkpoint; TensorFlow's ``model_checkpoint_path: "…"`` form and the
    comma-separated list of the seed (the last one counts) are read too."""
    names: list[str] = []
    for raw in text.replace(",", "\n").splitlines():
        line = raw.strip()
        if not line:
            continue
        match = _COACH_LINE.match(line)
        names.append(match.group(1) if match else line)
    return names[-1] if names else None


def _ref(name: Any, pointer: str, present: set[str], problems: list[Problem], fld: str) -> CheckpointRef | None:
    if not isinstance(name, str) or not name:
        problems.append(Problem("MODEL_VALIDATION_SERVICE_ERROR", f"{fld} does not name a checkpoint", pointer, fld))
        return None
    match = CHECKPOINT_NAME.match(name)
    if match is None:
        problems.append(
            Problem(
                "INVALID_CHECKPOINT_NAME",
                f"{pointer} names {name!r}; checkpoint names follow <iteration>_Step-<total steps>.ckpt",
                pointer,
                fld,
            )
        )
        return None
    found = checkpoint_files(name, present)
    if found is None:
        near = sorted({p.split("/", 1)[1].split(".ckpt")[0] + ".ckpt" for p in present if is_checkpoint_file(p)})
        have = f"; the folder holds {', '.join(near[:6])}" if near else "; model/ holds no checkpoint files"
        problems.append(
            Problem(
                "CHECKPOINT_FILES_DOES_NOT_EXIST",
                f"{pointer} names {name} but model/{name}.index + .data-00000-of-00001 "
                f"(TensorFlow) or model/{name}.pt (Trackside) are missing{have}",
                f"model/{name}",
                fld,
            )
        )
        return None
    kind, files = found
    return CheckpointRef(name, int(match.group(1)), int(match.group(2)), kind, files)


def resolve_checkpoints(
    present: set[str], read_text: Callable[[str], str], json_loads: Callable[[str], Any] = json.loads
) -> CheckpointResolution:
    """deepracer_checkpoints.json wins over .coach_checkpoint; with neither the import fails."""
    problems: list[Problem] = []
    if DEEPRACER_CHECKPOINTS in present:
        try:
            data = json_loads(read_text(DEEPRACER_CHECKPOINTS))
        except (ValueError, RecursionError) as error:
            problems.append(Problem("INVALID_JSON", f"{DEEPRACER_CHECKPOINTS}: {error}", DEEPRACER_CHECKPOINTS))
            return CheckpointResolution(None, problems)
        if not isinstance(data, dict):
            data = {}
        entries = {k: data.get(k) for k in ("best_checkpoint", "last_checkpoint")}
        names = {k: v.get("name") if isinstance(v, dict) else None for k, v in entries.items()}
        if names["best_checkpoint"] is None and names["last_checkpoint"] is None:
            problems.append(
                Problem(
                    "MODEL_VALIDATION_SERVICE_ERROR",
                    'expected {"best_checkpoint": {"name": …}, "last_checkpoint": {"name": …}}',
                    DEEPRACER_CHECKPOINTS,
                )
            )
            return CheckpointResolution(None, problems)
        refs: dict[str, CheckpointRef | None] = {}
        for key, name in names.items():
            if name is not None:
                refs[key] = _ref(name, DEEPRACER_CHECKPOINTS, present, problems, f"{key}.name")
        best = refs.get("best_checkpoint", refs.get("last_checkpoint"))
        last = refs.get("last_checkpoint", refs.get("best_checkpoint"))
        if problems or best is None or last is None:
            return CheckpointResolution(None, problems)
        return CheckpointResolution(Checkpoints(best, last, DEEPRACER_CHECKPOINTS), problems)
    if COACH_CHECKPOINT in present:
        name = parse_coach_checkpoint(read_text(COACH_CHECKPOINT))
        ref = _ref(name, COACH_CHECKPOINT, present, problems, "checkpoint")
        if ref is None:
            return CheckpointResolution(None, problems)
        return CheckpointResolution(Checkpoints(ref, ref, COACH_CHECKPOINT), problems)
    detail = "model/ needs .coach_checkpoint or deepracer_checkpoints.json naming the checkpoint"
    undotted = [p for p in ("model/coach_checkpoint", "coach_checkpoint", ".coach_checkpoint") if p in present]
    if undotted:
        detail += (
            f"; found {undotted[0]}: on macOS files whose names start with '.' are hidden and get lost "
            "(press Command-Shift-. in Finder to see them); it must be model/.coach_checkpoint"
        )
    problems.append(Problem("COACH_CHECKPOINT_DOES_NOT_EXIST", detail, COACH_CHECKPOINT))
    return CheckpointResolution(None, problems)
