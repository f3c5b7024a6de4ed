"""A model reaches the car's drive loop only after its bundle and network are checked; each
refusal says what is wrong (before the car can be armed with it)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from car_client.calibration import STOCK
from car_client.controller import CarController, CommandError
from car_client.inference import DriveLoop, extract_bundle, open_model
from car_client.navigation import ModelError
from race_server.fleet.bundle import build_bundle
from race_server.sim.metadata import default_model_metadata
from tests.fleet.helpers import BenchBackend
from tests.fleet.models import write_bundle_folder, write_straight_onnx


def bundle_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_the_servers_bundle_loads_and_drives(tmp_path: Path) -> None:
    folder = write_bundle_folder(tmp_path / "src")
    path, sha256 = build_bundle(default_model_metadata(), folder / "model.onnx", tmp_path / "bundles")
    assert build_bundle(default_model_metadata(), folder / "model.onnx", tmp_path / "bundles")[1] == sha256
    model = open_model(extract_bundle(path.read_bytes(), sha256, tmp_path / "car"), "m", 1, sha256)
    backend = BenchBackend()
    controller = CarController(backend, STOCK, tmp_path / "state")
    try:
        with pytest.raises(CommandError, match="no heartbeat"):
            controller.arm()  # no live link: never armed
        controller.heartbeat()
        with pytest.raises(CommandError, match="load a model"):
            controller.arm()
        controller.set_model(model)
        controller.arm()
        drive = DriveLoop(controller)
        assert drive.step() and controller.outputs.action == 4
        assert backend.throttle == pytest.approx(0.8) and drive.latency_ms is not None
    finally:
        controller.close()


def test_a_bundle_with_another_digest_is_refused(tmp_path: Path) -> None:
    data = bundle_bytes({"model_metadata.json": b"{}", "model.onnx": b"x"})
    with pytest.raises(ModelError, match="sha256 is"):
        extract_bundle(data, "0" * 64, tmp_path)


def test_a_bundle_without_the_network_is_refused(tmp_path: Path) -> None:
    data = bundle_bytes({"model_metadata.json": b"{}", "../model.onnx": b"x"})
    with pytest.raises(ModelError, match=r"the bundle has no model\.onnx"):
        extract_bundle(data, hashlib.sha256(data).hexdigest(), tmp_path)
    assert not (tmp_path.parent / "model.onnx").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_actions": 5, "favourite": 1}, "outputs 5 values but model_metadata.json's discrete action space needs 10"),
        ({"shape": (84, 84, 1)}, "the car's camera gives [N, 120, 160, 1]"),
    ],
)
def test_a_network_that_does_not_fit_the_car_or_its_action_space_is_refused(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    (tmp_path / "model_metadata.json").write_text(json.dumps(default_model_metadata()))
    write_straight_onnx(tmp_path / "model.onnx", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ModelError) as caught:
        open_model(tmp_path, "m", 1, "0" * 64)
    assert message in str(caught.value)


def test_a_file_that_is_not_a_network_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model_metadata.json").write_text(json.dumps(default_model_metadata()))
    (tmp_path / "model.onnx").write_bytes(np.zeros(10, np.uint8).tobytes())
    with pytest.raises(ModelError, match=r"model\.onnx cannot be loaded"):
        open_model(tmp_path, "m", 1, "0" * 64)


def test_the_simulated_car_sees_with_one_or_two_cameras() -> None:
    from car_client.backends.simulated import SimulatedBackend

    for stereo, channels in ((False, 1), (True, 2)):
        backend = SimulatedBackend(stereo=stereo)
        try:
            frame = backend.frame()
            assert frame is not None and frame.shape == (120, 160, channels) and frame.dtype == np.uint8
            assert ("stereo" in backend.capabilities) is stereo
            assert 0 < float(frame.mean()) < 255  # a picture of the track, not a blank
        finally:
            backend.close()
