"""The racer's model on the car: the car bundle checked and loaded, and the 15 Hz drive loop.

``load_bundle(archive, sha256, dest)`` verifies the download's SHA-256, extracts only
``model_metadata.json`` and ``model.onnx`` (no paths, no links, size-capped), parses the action
space and opens the network with onnxruntime, checking its camera input shape (N x 120 x 160 x 1,
or x 2 for stereo) and its output width against the action space. Any mismatch is a
``ModelError`` before the model can be armed.

``DriveLoop`` runs in its own thread: every 1/15 s it takes the newest camera frame, runs the
network (raw 0-255 pixels as float32, as Trackside's models are trained), maps the output with
the stock navigation formulas and hands the command to the controller. Inference latency and
frames per second are measured for telemetry.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from car_client.controller import CarController
from car_client.navigation import ActionSpace, ModelError, map_output, parse_action_space

BUNDLE_MAX_BYTES = 200 * 1024 * 1024
BUNDLE_FILES = ("model_metadata.json", "model.onnx")
DRIVE_HZ = 15.0
FRAME_SHAPE = (120, 160)


@dataclass
class LoadedModel:
    name: str
    model_id: int
    sha256: str
    space: ActionSpace
    session: Any  # onnxruntime.InferenceSession
    input_name: str
    channels: int


def extract_bundle(data: bytes, sha256: str, dest: Path) -> Path:
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ModelError(f"the downloaded bundle's sha256 is {digest}, not the expected {sha256}")
    if len(data) > BUNDLE_MAX_BYTES:
        raise ModelError(f"the bundle is over {BUNDLE_MAX_BYTES} bytes")
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            for member in archive.getmembers():
                if member.name in BUNDLE_FILES and member.isfile() and member.size <= BUNDLE_MAX_BYTES:
                    handle = archive.extractfile(member)
                    assert handle is not None
                    found[member.name] = handle.read()
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ModelError(f"the bundle is not a readable tar.gz ({error})") from error
    missing = [name for name in BUNDLE_FILES if name not in found]
    if missing:
        raise ModelError(f"the bundle has no {', '.join(missing)}")
    dest.mkdir(parents=True, exist_ok=True)
    for name, body in found.items():
        (dest / name).write_bytes(body)
    return dest


def open_model(folder: Path, name: str, model_id: int, sha256: str) -> LoadedModel:
    import onnxruntime as ort  # the heavy import happens when a model is loaded, not at start-up

    try:
        metadata = json.loads((folder / "model_metadata.json").read_text())
    except (OSError, ValueError) as error:
        raise ModelError(f"model_metadata.json cannot be read ({error})") from error
    if not isinstance(metadata, dict):
        raise ModelError("model_metadata.json must be an object")
    space = parse_action_space(metadata)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own types for a bad file
        raise ModelError(f"model.onnx cannot be loaded ({error})") from error
    inputs = session.get_inputs()
    channels = 2 if space.sensor == "STEREO_CAMERAS" else 1
    camera = next((i for i in inputs if i.name == space.sensor), inputs[0] if len(inputs) == 1 else None)
    if camera is None:
        raise ModelError(f"model.onnx has no input named {space.sensor}; its inputs: {[i.name for i in inputs]}")
    shape = list(camera.shape)
    expected = [120, 160, channels]
    if len(shape) != 4 or [d if isinstance(d, int) else None for d in shape[1:]] != expected:
        raise ModelError(
            f"model.onnx input {camera.name} has shape {shape}; the car's camera gives [N, 120, 160, {channels}]"
        )
    width = session.get_outputs()[0].shape[-1]
    if isinstance(width, int) and width != space.outputs:
        raise ModelError(
            f"model.onnx outputs {width} values but model_metadata.json's {space.kind} action space "
            f"needs {space.outputs}"
        )
    return LoadedModel(name, model_id, sha256, space, session, camera.name, channels)


class DriveLoop:
    """15 Hz: frame → network → stock mapping → controller (see the module docstring)."""

    def __init__(self, controller: CarController, hz: float = DRIVE_HZ) -> None:
        self.controller = controller
        self.period = 1.0 / hz
        self.latency_ms: float | None = None
        self.fps: float | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drive-loop", daemon=True)
        self._done: list[float] = []

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            next_at += self.period
            self.step()
            delay = next_at - time.monotonic()
            if delay < -self.period:  # fell behind (slow CPU): restart the grid instead of bursting
                next_at = time.monotonic()
            self._stop.wait(max(delay, 0.0))

    def step(self) -> bool:
        """One inference if the car is armed in autonomous mode; True if a command was applied."""
        c = self.controller
        with c.lock:
            model, active, pct, multiplier = c.model, c.armed and c.mode == "autonomous", c.max_speed, c.multiplier
        if not active or model is None:
            self._done.clear()
            self.fps = None
            return False
        frame = c.backend.frame()
        if frame is None:
            return False
        pixels = np.asarray(frame, dtype=np.float32).reshape(1, *FRAME_SHAPE, -1)[..., : model.channels]
        started = time.perf_counter()
        try:
            (output,) = model.session.run(None, {model.input_name: pixels})[:1]
            row = np.asarray(output).reshape(-1).tolist()
            command = map_output(model.space, row, max_speed_pct=pct, multiplier=multiplier)
        except Exception as error:  # a model failing at run time stops the car, not the client
            self.error = f"inference failed: {error}"
            c.stop()
            return False
        now = time.perf_counter()
        self.latency_ms = (now - started) * 1000.0
        self._done = [t for t in self._done if now - t < 1.0] + [now]
        self.fps = float(len(self._done)) if len(self._done) > 1 else None
        return c.autonomous(command, model)
