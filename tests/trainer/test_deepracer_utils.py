"""deepracer-utils (the community's log-analysis library, MIT-0) reads Trackside's logs right.

Each test loads logs the way the community's notebooks do (``DeepRacerLog``,
``load_training_trace``, ``load_evaluation_trace``, ``AnalysisUtils.simulation_agg``,
``TrainingMetrics``, the stability analysis) and checks episode times, lap completions and
episode numbers; the shared DeepRacer fixtures are the control.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer
from deepracer.logs import AnalysisUtils, DeepRacerLog, TarFileHandler, TrainingMetrics
from typer.testing import CliRunner

from race_server.live.session import LiveSession
from race_server.live.spec import DriverSpec, RunSpec
from race_server.models.hyperparameters import parse_hyperparameters
from race_server.queue.run_logs import write_run_logs
from race_server.sim.metadata import default_model_metadata
from trainer.cli import register
from trainer.config import StopConditions
from trainer.train import Trainer, TrainJob, TrainOptions, in_process_reward

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "deepracer-formats"
REWARD = "def reward_function(params):\n    return 1.0 - params['distance_from_center'] / params['track_width']\n"
EPISODES, PER_ITERATION = 10, 5
STEP_S = 1.0 / 15.0


def _agg(df: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    # deepracer-utils adds columns to the frame it is given: hand it a copy
    return AnalysisUtils.simulation_agg(df.copy(), **kwargs)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dru") / "model"
    hp = parse_hyperparameters({"num_epochs": 3, "num_episodes_between_training": PER_ITERATION})
    job = TrainJob(default_model_metadata(), hp, REWARD, stop=StopConditions(max_episodes=EPISODES))
    Trainer(job, folder, in_process_reward(REWARD), TrainOptions(workers=0, envs_per_worker=2)).run()
    return folder


def test_control_drfc_fixture_reads_right(tmp_path: Path) -> None:
    log = DeepRacerLog(str(FIXTURES / "drfc-run-v4-discrete"))
    log.load_training_trace()
    df = log.dataframe()
    assert list(df["unique_episode"].unique()) == list(range(20))
    agg = _agg(df)
    assert (agg["time"] > 0).all()


def test_control_deepracer_on_aws_fixture_reads_right() -> None:
    archive = str(FIXTURES / "deepracer-on-aws-logs-v6" / "sample-droa-solution-logs.tar.gz")
    log = DeepRacerLog(filehandler=TarFileHandler(archive))
    log.load_evaluation_trace()
    agg = _agg(log.dataframe(), firstgroup="stream", is_eval=True)
    assert list(agg["complete"]) == [1, 1, 1] and (agg["time"] > 25.0).all()
    training = DeepRacerLog(filehandler=TarFileHandler(archive))
    training.load_training_trace()
    assert (_agg(training.dataframe(), secondgroup="unique_episode")["time"] > 0).all()


def test_training_folder_episode_numbers_and_times(trained: Path) -> None:
    log = DeepRacerLog(str(trained))
    log.load_training_trace()
    df = log.dataframe()
    # episodes from 0 across iterations, as DeepRacer numbers them: unique_episode is not scrambled
    assert sorted(df["episode"].unique()) == list(range(EPISODES))
    assert (df["unique_episode"] == df["episode"]).all()
    firsts = df.groupby("unique_episode").first()
    assert (firsts["episode_status"] == "prepare").all() and (firsts["steps"] == 1.0).all()
    agg = _agg(df)
    metrics = json.loads((trained / "metrics" / "training" / "training-metrics.json").read_text())["metrics"]
    training = [m for m in metrics if m["phase"] == "training"]
    assert len(training) == EPISODES
    # every episode's time is its simulated duration (> 0), the same figure the metrics give
    assert (agg["time"] > 0).all()
    expected = [m["elapsed_time_in_milliseconds"] / 1000.0 for m in training]
    assert list(agg["time"]) == pytest.approx(expected, abs=1e-3)
    # the clock keeps running: no episode starts before the previous one ended
    starts = df.groupby("unique_episode")["tstamp"].min().to_numpy()
    ends = df.groupby("unique_episode")["tstamp"].max().to_numpy()
    assert all(s > e for s, e in zip(starts[1:], ends[:-1], strict=True))


def test_training_metrics_have_evaluation_rows_and_sim_clock_times(trained: Path) -> None:
    tm = TrainingMetrics(None, fname=str(trained / "metrics" / "training" / "training-metrics.json"))
    training, evaluation = tm.getTraining(), tm.getEvaluation()
    assert len(training) == EPISODES
    assert len(evaluation) == EPISODES // PER_ITERATION  # one greedy episode after each iteration
    assert sorted(training["iteration"].unique()) == [0, 1]
    assert (training["time"] > 0).all() and (evaluation["time"] > 0).all()
    assert training["start_time"].is_monotonic_increasing and training["start_time"].nunique() == EPISODES
    summary = tm.getSummary()
    assert list(summary["train_episodes"]) == [PER_ITERATION, PER_ITERATION]
    assert list(summary["eval_episodes"]) == [1, 1]


def test_stability_analysis_sees_real_wall_clock(trained: Path) -> None:
    log = DeepRacerLog(str(trained))
    log.load_training_trace()
    result = log.stability.analyze()
    assert not result.empty
    assert list(result["avg_ms"]) == pytest.approx([1000.0 * STEP_S] * len(result), abs=1.0)
    rtf = result["rtf"].astype(float)
    assert rtf.notna().all() and (rtf > 0).all() and rtf.map(math.isfinite).all()


def test_evaluation_folder_reads_right(trained: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(trained, model)
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["evaluate", str(model), "--trials", "2", "--json"])
    assert result.exit_code == 0, result.output
    log = DeepRacerLog(str(model))
    log.load_evaluation_trace()
    df = log.dataframe()
    assert sorted(df["episode"].unique()) == [0, 1]
    agg = _agg(df, firstgroup="stream", is_eval=True)
    (metrics_file,) = (model / "metrics" / "evaluation").glob("evaluation-*.json")
    trials = json.loads(metrics_file.read_text())["metrics"]
    assert (agg["time"] > 0).all()
    # elapsed_time_in_milliseconds is the simulated time, as the simtrace measures it
    assert list(agg["time"]) == pytest.approx([t["elapsed_time_in_milliseconds"] / 1000.0 for t in trials], abs=1e-3)
    assert all(t["elapsed_time_in_milliseconds"] < 60_000 for t in trials)  # not wall-clock epochs


def test_an_evaluation_job_from_the_jobs_api_reads_right(trained: Path, tmp_path: Path) -> None:
    """The jobs API's worker runs ``_run_evaluation``; its job folder is what a racer downloads."""
    import threading

    from trainer.service import _run_evaluation

    messages: list[tuple[Any, ...]] = []
    job = tmp_path / "jobs" / "42"
    config = {"kind": "evaluation", "model_job_id": 1, "evaluation": {"trials": 2}}
    _run_evaluation(config, job, trained, messages.append, threading.Event())
    assert messages[-1][0] == "done", messages
    log = DeepRacerLog(str(job))
    log.load_evaluation_trace()
    df = log.dataframe()
    assert sorted(df["episode"].unique()) == [0, 1]
    agg = _agg(df, firstgroup="stream", is_eval=True)
    trials = json.loads((job / "metrics" / "evaluation" / "evaluation-metrics.json").read_text())["metrics"]
    assert (agg["time"] > 0).all()
    assert list(agg["time"]) == pytest.approx([t["elapsed_time_in_milliseconds"] / 1000.0 for t in trials], abs=1e-3)
    assert list(agg["progress"]) == pytest.approx([t["completion_percentage"] for t in trials], abs=1.0)


def _live_run(laps: int) -> list[dict[str, Any]]:
    session = LiveSession(1, "reinvent_base", False)
    spec = RunSpec(
        race_id=1,
        run_id=7,
        racer_id=3,
        route_id="reinvent_base",
        reverse=False,
        objects={},
        driver=DriverSpec(kind="reference", reference_speed=2.0),
        slot_s=120.0,
        countdown_s=0.0,
    )
    assert session.launch(spec) == []
    telemetry: list[dict[str, Any]] = []
    lap_events: list[dict[str, Any]] = []
    while session.running:
        for event in session.tick():
            if event["type"] == "telemetry":
                telemetry.append(event)
            elif event["type"] == "lap":
                lap_events.append(event)
        if len(lap_events) >= laps and telemetry and telemetry[-1].get("laps", 0) >= laps:
            break
    assert len(lap_events) >= laps
    return telemetry


def test_live_run_reads_right(tmp_path: Path) -> None:
    telemetry = _live_run(laps=2)
    run = tmp_path / "run"
    write_run_logs(run, telemetry, ("reinvent_base", False))
    # a notebook user drops the download into a DeepRacer-for-Cloud evaluation folder
    model = tmp_path / "download"
    trace = model / "evaluation-20260101000000" / "evaluation-simtrace" / "0-iteration.csv"
    trace.parent.mkdir(parents=True)
    shutil.copy(run / "simtrace.csv", trace)
    (model / "model").mkdir()
    shutil.copy(FIXTURES / "drfc-run-v4-discrete" / "model" / "model_metadata.json", model / "model")
    log = DeepRacerLog(str(model))
    log.load_evaluation_trace()
    df = log.dataframe()
    assert sorted(df["episode"].unique()) == [0, 1]  # one episode per lap, from 0
    assert (df["track_len"] > 17.0).all() and (df["closest_waypoint"] > 0).any()
    assert (df["steering_angle"] != 0).any()
    laps = df[df["episode_status"] == "lap_complete"]
    assert list(laps["episode"]) == [0, 1] and (laps["progress"] == 100).all()
    agg = _agg(df, firstgroup="stream", is_eval=True)
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert [m["episode_status"] for m in metrics] == ["Lap complete", "Lap complete"]  # no phantom trial
    assert list(agg["complete"]) == [1, 1]
    lap_times = [m["elapsed_time_in_milliseconds"] / 1000.0 for m in metrics]
    assert all(t > 5.0 for t in lap_times)
    # each lap's simtrace time is its lap time, to within the step the line was crossed in
    assert list(agg["time"]) == pytest.approx(lap_times, abs=STEP_S + 1e-6)
