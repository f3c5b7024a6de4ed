"""The RaceHost as the queue service sees it, and how a submission becomes the host's driver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from race_server.db import races
from race_server.live.events import HostEvent
from race_server.models.store import ModelStore, RaceFiles
from race_server.races.ranking import Lap
from race_server.races.submissions import reference_speed_of


class Host(Protocol):
    """What the service needs from a RaceHost (race_server.live.host.RaceHost)."""

    async def start(self, route_id: str, reverse: bool, laps: Sequence[Lap] = ()) -> None: ...
    async def launch(self, spec: Any) -> None: ...
    async def set_speed_multiplier(self, multiplier: float) -> float: ...
    async def abort(self, reason: str) -> None: ...
    async def clear_timing(self) -> None: ...
    def events(self) -> AsyncIterator[HostEvent]: ...
    async def close(self) -> None: ...


HostFactory = Callable[[int], Host]


def default_host_factory(realtime: bool = True) -> HostFactory:
    def make(race_id: int) -> Host:
        from race_server.live.host import RaceHost

        host: Host = RaceHost(race_id, realtime=realtime)
        return host

    return make


def driver_spec(submission: races.SubmissionRow, model: RaceFiles | None) -> Any:
    """The RaceHost's DriverSpec for a submission (``model``: its files, from the model store)."""
    from race_server.live.host import DriverSpec

    driver = submission.driver
    if driver.get("kind") == "reference":
        return DriverSpec(kind="reference", reference_speed=reference_speed_of(driver))
    if model is None or model.onnx_path is None:
        raise LookupError(f"model {submission.model_id} is gone or has no model.onnx")
    return DriverSpec(
        kind="onnx", onnx_path=model.onnx_path, model_metadata=model.metadata, reward_function=reward_source(model)
    )


def reward_source(model: RaceFiles) -> str | None:
    """The model's reward_function.py as text; None without one (its steps are then logged with reward 0)."""
    if model.reward_path is None:
        return None
    try:
        return model.reward_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


async def race_files(models: ModelStore, submission: races.SubmissionRow | None) -> RaceFiles | None:
    if submission is None or submission.model_id is None:
        return None
    return await models.race_files(submission.model_id)


def default_model_store(pool: asyncpg.Pool, data_dir: Path) -> ModelStore:
    # races only read from the store: no weight checks or TensorFlow conversion needed
    return ModelStore(pool, data_dir, weights_check=False, tf_converter=False)
