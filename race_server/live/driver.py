"""Policies that drive the LIVE car: a racer's ONNX model, or the geometric reference driver.

Both answer ``act(sim)`` with the policy's own command (steering degrees, speed m/s); the host
applies the racer's speed multiplier afterwards, so a driver never sees it.

ONNX models are the ones ``trainer.onnx_export`` writes: float32 inputs named after the sensors
(cameras [N, 120, 160, C] in raw 0-255 pixels) and one output, the action probabilities
(discrete: the greedy action is the argmax) or the action mean in [-1, 1] (continuous: scaled
linearly to the metadata's bounds, as the Gymnasium env scales actions). onnxruntime runs on one
intra-op thread: inference shares the machine with the 15 Hz clock and with training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from race_server.sim.env import SensorSuite
from race_server.sim.episode import Simulation
from race_server.sim.metadata import ModelMetadata, parse_model_metadata
from race_server.sim.pursuit import pure_pursuit


class DriverError(RuntimeError):
    """The racer's model cannot be loaded or cannot be run; the message says why."""


class Driver(Protocol):
    def act(self, sim: Simulation) -> tuple[float, float]:
        """(steering degrees left-positive, speed m/s) for the car as it is now."""
        ...


class ReferenceDriver:
    """Geometric pure pursuit along the centre line at a constant speed (house and demo racers)."""

    def __init__(self, speed: float = 1.5) -> None:
        self.speed = speed

    def act(self, sim: Simulation) -> tuple[float, float]:
        world = sim.world
        if world is None:
            raise DriverError("the simulation has not been reset")
        return pure_pursuit(sim.track, world.x, world.y, world.yaw, self.speed)


class OnnxDriver:
    """A racer's model.onnx with its model_metadata.json."""

    def __init__(self, onnx_path: Path, metadata: dict[str, Any], *, seed: int = 0) -> None:
        import onnxruntime as ort  # imported here: only the simulator process runs models

        try:
            self.model: ModelMetadata = parse_model_metadata(metadata)
        except ValueError as error:
            raise DriverError(f"model_metadata.json: {error}") from error
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for bad files
            raise DriverError(f"{Path(onnx_path).name}: cannot be loaded ({error})") from error
        names = {i.name for i in self.session.get_inputs()}
        missing = sorted(set(self.model.sensors) - names)
        if missing:
            raise DriverError(f"model.onnx has no input for sensor(s) {missing}; its inputs are {sorted(names)}")
        self.output = self.session.get_outputs()[0].name
        width = self.session.get_outputs()[0].shape[-1]
        expected = len(self.model.actions) if self.model.action_space_type == "discrete" else 2
        if isinstance(width, int) and width != expected:
            raise DriverError(
                f"model.onnx outputs {width} values but model_metadata.json's "
                f"{self.model.action_space_type} action space needs {expected}"
            )
        self.sensors = SensorSuite(self.model.sensors, self.model.lidar_config, domain_randomization=False)
        self.rng = np.random.default_rng(seed)

    def observe(self, sim: Simulation) -> dict[str, NDArray[np.float32]]:
        world = sim.world
        if world is None:
            raise DriverError("the simulation has not been reset")
        boxes = sim.track_objects.boxes if sim.track_objects is not None else []
        obs = self.sensors.observe(sim.track, world.x, world.y, world.yaw, boxes, self.rng)
        return {name: np.asarray(value, dtype=np.float32)[None] for name, value in obs.items()}

    def command(self, output: NDArray[np.float32]) -> tuple[float, float]:
        """(steering, speed) for the network's output row."""
        row = np.asarray(output, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(row)):
            raise DriverError("model.onnx produced a non-finite output")
        if self.model.action_space_type == "discrete":
            action = self.model.actions[int(np.argmax(row))]
            return action.steering_angle, action.speed
        bounds = self.model.continuous
        assert bounds is not None
        mean = np.clip(row[:2], -1.0, 1.0)
        steer = bounds.steering_low + (float(mean[0]) + 1.0) / 2.0 * (bounds.steering_high - bounds.steering_low)
        speed = bounds.speed_low + (float(mean[1]) + 1.0) / 2.0 * (bounds.speed_high - bounds.speed_low)
        return steer, speed

    def act(self, sim: Simulation) -> tuple[float, float]:
        inputs = self.observe(sim)
        try:
            (output,) = self.session.run([self.output], inputs)
        except Exception as error:  # a model that fails at inference fails the run, not the host
            raise DriverError(f"model.onnx failed at inference ({error})") from error
        return self.command(output)


def load_driver(
    kind: str, onnx_path: Path | None, metadata: dict[str, Any] | None, reference_speed: float, seed: int
) -> Driver:
    if kind == "reference":
        return ReferenceDriver(reference_speed)
    if onnx_path is None or metadata is None:
        raise DriverError("an onnx driver needs model.onnx and model_metadata.json")
    return OnnxDriver(onnx_path, metadata, seed=seed)
