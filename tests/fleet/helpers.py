"""Shared by the fleet tests: a car client running in the test's event loop, a bench backend."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray

from car_client.calibration import STOCK, Calibration
from car_client.controller import CarController
from car_client.inference import DriveLoop
from car_client.link import CarLink
from race_server import protocol as p


def hello_frame(**changes: Any) -> str:
    hello = {
        "v": 1,
        "type": "car_hello",
        "req": "hello",
        "hardware": "test-rig",
        "software": "trackside-car test",
        "calibration": STOCK.to_dict(),
        "mode": "autonomous",
        "armed": False,
        "estop": False,
        **changes,
    }
    return p.encode_car_frame(p.CarHello.model_validate(hello))


class BenchBackend:
    """A car on the bench: records the servo commands and when it last went to neutral."""

    hardware = "bench"
    capabilities: tuple[str, ...] = ("camera", "tail_light")

    def __init__(self) -> None:
        self.calibration: Calibration = STOCK
        self.steering = 0.0
        self.throttle = 0.0
        self.neutral_at: float | None = None
        self.light = "#000000"

    def apply(self, steering: float, throttle: float) -> None:
        self.steering, self.throttle = steering, throttle
        self.neutral_at = None

    def neutral(self) -> None:
        self.steering, self.throttle = 0.0, 0.0
        if self.neutral_at is None:
            self.neutral_at = time.monotonic()

    def set_calibration(self, calibration: Any) -> None:
        self.calibration = calibration

    def frame(self) -> NDArray[np.uint8] | None:
        return np.full((120, 160, 1), 80, dtype=np.uint8)

    def battery_pct(self) -> float | None:
        return 87.0

    def tail_light(self, colour: str) -> None:
        self.light = colour

    def close(self) -> None:
        self.neutral()


@dataclass
class RunningCar:
    controller: CarController
    link: CarLink
    drive: DriveLoop
    backend: Any


@contextlib.asynccontextmanager
async def running_car(
    server_url: str, token: str, state_dir: Path, backend: Any = None, *, video: bool = False
) -> AsyncIterator[RunningCar]:
    backend = backend or BenchBackend()
    controller = CarController(backend, STOCK, state_dir)
    drive = DriveLoop(controller)
    drive.start()
    link = CarLink(server_url, token, controller, drive, state_dir, video=video)
    task = asyncio.create_task(link.run())
    try:
        await asyncio.wait_for(link.status.welcomed.wait(), 20)
        yield RunningCar(controller, link, drive, backend)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        drive.close()
        controller.close()
        backend.close()


async def register_car(client: httpx.AsyncClient, name: str = "car-1") -> tuple[int, str]:
    response = await client.post("/api/cars", json={"name": name})
    assert response.status_code == 201, response.text
    return int(response.json()["car_id"]), str(response.json()["token"])


async def until(predicate: Any, timeout: float = 10.0, step: float = 0.01) -> None:  # noqa: ASYNC109
    """Wait for a condition another thread makes true (the car's threads cannot await)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
        await asyncio.sleep(step)
