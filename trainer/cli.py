"""``trackside train`` and ``trackside evaluate`` (wired in by race_server.cli)."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

ModelDir = Annotated[Path, typer.Argument(help="Model folder (DeepRacer layout).")]
Direction = Annotated[str | None, typer.Option("--direction", help="cw | ccw (default: the track's).")]
RaceType = Annotated[str, typer.Option("--race-type", help="time_trial | object_avoidance | head_to_bot")]


def _fail(message: str, code: str = "INVALID_INPUT") -> typer.Exit:
    """Bad input files or options: exit 2, in the run's format (text, or the one JSON object)."""
    from race_server.cli_outcome import EXIT_USAGE, fail

    return fail(code, message, exit_code=EXIT_USAGE)


def _world(
    base: Any,
    track: str | None,
    direction: str | None,
    alternate: bool | None,
    race_type: str | None,
    objects: int | None,
    random_objects: bool | None,
    bots: int | None,
    bot_speed: float | None,
    bot_lane_change: tuple[float, float] | None,
) -> Any:
    from dataclasses import replace

    from trainer.config import direction_name, race_type_name

    changes: dict[str, Any] = {}
    if track is not None:
        changes["track_id"] = track
    if direction is not None:
        changes["direction"] = direction_name(direction)
    if alternate is not None:
        changes["alternate_direction"] = alternate
    if race_type is not None:
        changes["race_type"] = race_type_name(race_type)
    if objects is not None:
        changes["number_of_obstacles"] = objects
    if random_objects is not None:
        changes["randomize_obstacle_locations"] = random_objects
    if bots is not None:
        changes["number_of_bots"] = bots
    if bot_speed is not None:
        changes["bot_speed"] = bot_speed
    if bot_lane_change is not None:
        changes.update(
            is_lane_change=True, lower_lane_change_time=bot_lane_change[0], upper_lane_change_time=bot_lane_change[1]
        )
    world = replace(base, **changes)
    world.validate()
    return world


@contextlib.contextmanager
def _reward(source: str) -> Iterator[Any]:
    from trainer.sandbox import RewardSandbox

    with RewardSandbox(source) as sandbox:
        yield sandbox


def train(
    out: Annotated[Path, typer.Argument(help="Output model folder (created; with --resume, continued).")],
    from_folder: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Folder with model_metadata.json, reward_function.py, hyperparameters.json, training_params.yaml.",
        ),
    ] = None,
    metadata: Annotated[Path | None, typer.Option(help="model_metadata.json (default: the console default).")] = None,
    hyperparameters: Annotated[
        Path | None, typer.Option(help="hyperparameters.json (default: console defaults).")
    ] = None,
    reward: Annotated[Path | None, typer.Option(help="reward_function.py (default: follow the centre line).")] = None,
    track: Annotated[str | None, typer.Option(help="Track id, e.g. reinvent_base.")] = None,
    direction: Direction = None,
    alternate_direction: Annotated[bool | None, typer.Option("--alternate-direction/--no-alternate-direction")] = None,
    race_type: Annotated[
        str | None, typer.Option("--race-type", help="time_trial | object_avoidance | head_to_bot")
    ] = None,
    objects: Annotated[int | None, typer.Option("--objects", help="Number of boxes (object avoidance).")] = None,
    random_objects: Annotated[bool | None, typer.Option("--random-objects/--fixed-objects")] = None,
    bots: Annotated[int | None, typer.Option("--bots", help="Number of bot cars (head to bot).")] = None,
    bot_speed: Annotated[float | None, typer.Option("--bot-speed", help="Bot speed, m/s.")] = None,
    bot_lane_change: Annotated[
        tuple[float, float] | None, typer.Option("--bot-lane-change", help="MIN MAX seconds.")
    ] = None,
    max_minutes: Annotated[float | None, typer.Option(help="Stop after this many minutes.")] = None,
    max_episodes: Annotated[int | None, typer.Option(help="Stop after this many episodes.")] = None,
    clone_from: Annotated[Path | None, typer.Option(help="Start from this model folder's best checkpoint.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the training in OUT from its last checkpoint.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    workers: Annotated[int, typer.Option(help="Rollout worker processes.")] = 2,
    envs_per_worker: Annotated[int, typer.Option(help="Simulators per worker.")] = 4,
    as_json: Annotated[
        bool, typer.Option("--json", help="End with one JSON object (ok, errors, model_folder) on stdout.")
    ] = False,
) -> None:
    """Train a model into a DeepRacer model folder."""
    import yaml

    from race_server.cli_outcome import emit, use_json

    use_json(as_json)

    from race_server.models.hyperparameters import HyperparameterError, parse_hyperparameters
    from race_server.sim.metadata import MetadataError, default_model_metadata, parse_model_metadata
    from trainer.bench import CENTRE_LINE_REWARD
    from trainer.config import ConfigError, StopConditions, TrainWorld
    from trainer.progress import ProgressDisplay
    from trainer.sandbox import RewardError
    from trainer.train import Trainer, TrainJob, TrainOptions

    source_dir = from_folder if from_folder is not None else (out if resume else None)

    def pick(explicit: Path | None, *names: str) -> Path | None:
        if explicit is not None:
            return explicit
        for name in names:
            if source_dir is not None and (source_dir / name).exists():
                return source_dir / name
        return None

    try:
        meta_path = pick(metadata, "model_metadata.json")
        meta_raw = json.loads(meta_path.read_text()) if meta_path else default_model_metadata()
        parsed = parse_model_metadata(meta_raw)
        for warning in parsed.warnings:
            typer.echo(f"warning: {warning}", err=True)
        hp_path = pick(hyperparameters, "hyperparameters.json", "ip/hyperparameters.json")
        hp = parse_hyperparameters(json.loads(hp_path.read_text()) if hp_path else {}, parsed.training_algorithm)
        reward_path = pick(reward, "reward_function.py")
        reward_source = reward_path.read_text() if reward_path else CENTRE_LINE_REWARD
        params_path = pick(None, "training_params.yaml")
        base = (
            TrainWorld.from_training_params(yaml.safe_load(params_path.read_text()) or {})
            if params_path
            else TrainWorld()
        )
        world = _world(
            base,
            track,
            direction,
            alternate_direction,
            race_type,
            objects,
            random_objects,
            bots,
            bot_speed,
            bot_lane_change,
        )
        stop = StopConditions(max_minutes=max_minutes, max_episodes=max_episodes)
    except (MetadataError, HyperparameterError, ConfigError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    if stop.max_minutes is None and stop.max_episodes is None:
        typer.echo("note: no --max-minutes / --max-episodes given; training runs until Ctrl-C", err=True)
    job = TrainJob(meta_raw, hp, reward_source, world, stop, clone_from=clone_from, model_name=out.name or "model")
    options = TrainOptions(workers=workers, envs_per_worker=envs_per_worker, seed=seed, resume=resume)

    # stderr, so stdout stays the model folder path alone; a terminal gets one redrawn bar line
    show = ProgressDisplay(sys.stderr, shutil.get_terminal_size().columns)

    interrupted = False
    try:
        with _reward(reward_source) as reward_fn:
            trainer = Trainer(job, out, reward_fn, options)
            try:
                trainer.run(show)
            finally:
                show.finish()
    except KeyboardInterrupt:
        interrupted = True
        typer.echo("interrupted: the last checkpoint is kept", err=True)
    except RewardError as exc:
        line = f" (line {exc.line})" if exc.line is not None else ""
        raise _fail(f"reward function {exc.code}{line}: {exc.message}", code=exc.code) from None
    except (ConfigError, ValueError, RuntimeError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        emit(True, model_folder=str(out), interrupted=interrupted)
    else:
        typer.echo(str(out))


def evaluate_cmd(
    model: ModelDir,
    track: Annotated[str | None, typer.Option(help="Track id (default: the model's training track).")] = None,
    direction: Direction = None,
    trials: Annotated[int, typer.Option(help="Number of trials (1-10).")] = 3,
    continuous: Annotated[bool, typer.Option(help="Run the laps back to back in one episode.")] = False,
    resets: Annotated[int, typer.Option(help="Resets allowed per trial; -1 = unlimited; 0 = off-track ends it.")] = 0,
    off_track_penalty: Annotated[float, typer.Option(help="Seconds (0-30).")] = 3.0,
    collision_penalty: Annotated[float, typer.Option(help="Seconds (0-30).")] = 3.0,
    race_type: Annotated[
        str | None, typer.Option("--race-type", help="time_trial | object_avoidance | head_to_bot")
    ] = None,
    objects: Annotated[int | None, typer.Option("--objects")] = None,
    random_objects: Annotated[bool | None, typer.Option("--random-objects/--fixed-objects")] = None,
    bots: Annotated[int | None, typer.Option("--bots")] = None,
    bot_speed: Annotated[float | None, typer.Option("--bot-speed")] = None,
    bot_lane_change: Annotated[tuple[float, float] | None, typer.Option("--bot-lane-change")] = None,
    checkpoint: Annotated[str, typer.Option(help="last | best")] = "last",
    seed: Annotated[int, typer.Option()] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    video: Annotated[
        Path | None, typer.Option("--video", help="Also record the run to this MP4 (camera view + track map).")
    ] = None,
) -> None:
    """Evaluate a model folder: per-trial lap time, completion, status, off-track / crash / reset counts."""
    from race_server.cli_outcome import emit, use_json

    use_json(as_json)
    from trainer.checkpoint import ModelFolderError, load_checkpoint, read_model_folder
    from trainer.config import ConfigError, TrainWorld
    from trainer.evaluation import EvaluationSettings, evaluate
    from trainer.train import policy_from_state

    try:
        folder = read_model_folder(model)
        base = TrainWorld.from_training_params(folder.training_params)
        world = _world(
            base, track, direction, None, race_type, objects, random_objects, bots, bot_speed, bot_lane_change
        )
        settings = EvaluationSettings(
            trials=trials,
            continuous=continuous,
            resets=None if resets < 0 else resets,
            off_track_penalty=off_track_penalty,
            collision_penalty=collision_penalty,
            seed=seed,
        )
        policy = policy_from_state(load_checkpoint(folder.checkpoint_path(checkpoint)))
        if video is None:
            result = evaluate(policy, folder.metadata_raw, world, settings)
        else:
            # imported only here: the video library is loaded only when a video is asked for
            from trainer.video import evaluate_with_video

            result, frames = evaluate_with_video(policy, folder.metadata_raw, world, video, settings)
            typer.echo(f"video: {video} ({frames} frames)", err=True)
    except (ModelFolderError, ConfigError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    stamp = time.strftime("%Y%m%d%H%M%S")
    result.write_metrics(model / "metrics" / "evaluation" / f"evaluation-{stamp}.json")
    # DeepRacer-for-Cloud's layout, which deepracer-utils' load_evaluation_trace() reads
    result.write_simtrace(model / f"evaluation-{stamp}" / "evaluation-simtrace" / "0-iteration.csv")
    rows = [
        {
            "trial": t.trial,
            "lap_time_s": None if t.lap_time is None else round(t.lap_time, 3),
            "completion_percentage": round(t.completion_percentage, 1),
            "status": t.status,
            **t.counts,
        }
        for t in result.trials
    ]
    if as_json:
        emit(True, trials=rows, completed=result.completed, best_lap_s=result.best_lap)
        return
    for r in rows:
        lap = "-" if r["lap_time_s"] is None else f"{r['lap_time_s']:.3f} s"
        typer.echo(
            f"trial {r['trial']}: {lap:>10} | {r['completion_percentage']:5.1f}% | {r['status']} | off track "
            f"{r['off_track_count']} | crashes {r['crash_count']} | resets {r['reset_count']}"
        )


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate_cmd)
