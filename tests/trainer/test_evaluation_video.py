"""``trackside evaluate --video``: an H.264 MP4 of the run, one frame per simulator step, that PyAV decodes."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import typer
from numpy.typing import NDArray
from typer.testing import CliRunner

from race_server.models.hyperparameters import parse_hyperparameters
from race_server.sim.metadata import default_model_metadata
from trainer.checkpoint import load_checkpoint, read_model_folder
from trainer.cli import register
from trainer.config import StopConditions, TrainWorld
from trainer.evaluation import EvaluationSettings, evaluate
from trainer.train import Trainer, TrainJob, TrainOptions, in_process_reward, policy_from_state
from trainer.video import VIDEO_FPS, evaluate_with_video
from trainer.video_frame import CAMERA_PANEL, FRAME_HEIGHT, FRAME_WIDTH

REWARD = "def reward_function(params):\n    return 1.0 - params['distance_from_center'] / params['track_width']\n"


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("video") / "model"
    hp = parse_hyperparameters({"num_epochs": 3, "num_episodes_between_training": 5}, "clipped_ppo")
    job = TrainJob(default_model_metadata(), hp, REWARD, stop=StopConditions(max_episodes=5))
    Trainer(job, folder, in_process_reward(REWARD), TrainOptions(workers=0, envs_per_worker=1)).run()
    return folder


def _decode(path: Path) -> tuple[list[NDArray[np.uint8]], av.video.stream.VideoStream]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8) for frame in container.decode(stream)]
    return frames, stream


def _car_on_map(frame: NDArray[np.uint8]) -> tuple[float, float]:
    """Centre of the red car dot on the map panel (no track colour is strongly red)."""
    panel = frame[:, CAMERA_PANEL[1] :].astype(np.int16)
    red = (panel[..., 0] > 150) & (panel[..., 1] < 100) & (panel[..., 2] < 100)
    rows, cols = np.nonzero(red)
    assert len(rows) > 20, "car dot not found on the map"
    return float(rows.mean()), float(cols.mean())


def test_video_has_one_frame_per_step_and_shows_the_car_moving(model_folder: Path, tmp_path: Path) -> None:
    model = read_model_folder(model_folder)
    policy = policy_from_state(load_checkpoint(model.checkpoint_path("last")))
    world = TrainWorld.from_training_params(model.training_params)
    settings = EvaluationSettings(trials=1, max_steps=200)
    out = tmp_path / "sub" / "run.mp4"

    result, written = evaluate_with_video(policy, model.metadata_raw, world, out, settings)

    steps = result.trials[0].steps
    assert 15 < steps <= 200
    frames, stream = _decode(out)
    assert stream.codec_context.name == "h264"
    assert stream.average_rate == VIDEO_FPS
    assert len(frames) == written == steps
    assert frames[0].shape == (FRAME_HEIGHT, FRAME_WIDTH, 3) == (480, 1120, 3)
    # the camera panel changes as the car drives, and the car dot travels on the map
    first_cam = frames[0][:, : CAMERA_PANEL[1]].astype(np.int16)
    last_cam = frames[-1][:, : CAMERA_PANEL[1]].astype(np.int16)
    assert np.abs(first_cam - last_cam).mean() > 2.0
    (r0, c0), (r1, c1) = _car_on_map(frames[0]), _car_on_map(frames[-1])
    assert np.hypot(r1 - r0, c1 - c0) > 10.0
    # recording does not change the run
    again = evaluate(policy, model.metadata_raw, world, settings)
    assert again.trials[0].steps == steps
    assert again.trials[0].completion_percentage == result.trials[0].completion_percentage


def test_cli_video_flag(model_folder: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    out = tmp_path / "eval.mp4"
    result = CliRunner().invoke(app, ["evaluate", str(model_folder), "--trials", "1", "--json", "--video", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output.strip().splitlines()[-1])
    assert len(doc["trials"]) == 1

    model = read_model_folder(model_folder)
    policy = policy_from_state(load_checkpoint(model.checkpoint_path("last")))
    world = TrainWorld.from_training_params(model.training_params)
    expected = evaluate(policy, model.metadata_raw, world, EvaluationSettings(trials=1)).trials[0].steps
    frames, _ = _decode(out)
    assert len(frames) == expected
    assert f"({expected} frames)" in result.output
