"""`trackside reward validate|check`: console-style checks of a reward file, before a job runs it."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

reward_app = typer.Typer(
    help="Reward functions: validate a reward file, or check it over simulated episodes.",
    no_args_is_help=True,
)


class Direction(StrEnum):
    cw = "cw"
    ccw = "ccw"


class RaceType(StrEnum):
    time_trial = "time_trial"
    object_avoidance = "object_avoidance"
    head_to_bot = "head_to_bot"


FileArg = Annotated[Path, typer.Argument(help="The reward file (defines reward_function(params)).")]
TrackOpt = Annotated[str, typer.Option("--track", help="Console track id (or a route file id), e.g. reinvent_base.")]
DirectionOpt = Annotated[Direction | None, typer.Option(help="Driving direction (default: the track's default).")]
RaceTypeOpt = Annotated[RaceType, typer.Option(help="Race type.")]
ObjectsOpt = Annotated[int, typer.Option("--objects", help="Obstacles (object_avoidance).")]
RandomObjectsOpt = Annotated[bool, typer.Option("--random-objects", help="Randomise obstacle positions per episode.")]
BotsOpt = Annotated[int, typer.Option("--bots", help="Bot cars (head_to_bot).")]
BotSpeedOpt = Annotated[float, typer.Option("--bot-speed", help="Bot speed, m/s.")]
LaneChangeOpt = Annotated[
    tuple[float, float] | None,
    typer.Option("--bot-lane-change", help="Bots change lanes every MIN..MAX seconds.", metavar="MIN MAX"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _world(
    race_type: RaceType,
    objects: int,
    random_objects: bool,
    bots: int,
    bot_speed: float,
    bot_lane_change: tuple[float, float] | None,
) -> dict[str, Any]:
    config: dict[str, Any] = {"race_type": race_type.value.upper()}
    if race_type is RaceType.object_avoidance:
        config["number_of_obstacles"] = objects
        config["randomize_obstacle_locations"] = random_objects
    elif race_type is RaceType.head_to_bot:
        config["number_of_bots"] = bots
        config["bot_speed"] = bot_speed
        if bot_lane_change is not None:
            config["is_lane_change"] = True
            config["lower_lane_change_time"], config["upper_lane_change_time"] = bot_lane_change
    return {"objects": config}


def _track_args(track: str, direction: Direction | None) -> dict[str, Any]:
    from race_server.sim.tracks import list_routes, list_tracks

    if track not in {t.track_id for t in list_tracks()} and track in list_routes():
        return {"route_id": track, "reverse": direction is Direction.cw}  # a raw route file: cw means reversed
    return {"track_id": track, "direction": direction.value if direction is not None else None}


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"error: cannot read {file}: {exc}", err=True)
        raise typer.Exit(2) from None


def _emit(result: dict[str, Any], as_json: bool, file: Path) -> None:
    if as_json:
        typer.echo(json.dumps(result))
    else:
        for error in result["errors"]:
            where = f"{file}:{error['line']}: " if error.get("line") else f"{file}: "
            step = f"[episode {error['episode']} step {error['step']}] " if "episode" in error else ""
            typer.echo(f"{where}{step}{error['code']}: {error['message']}")
        if "steps" in result:
            typer.echo(f"{result['episodes']} episode(s), {result['steps']} step(s) checked")
        typer.echo("OK" if result["ok"] else "FAILED")
    if not result["ok"]:
        raise typer.Exit(1)


@reward_app.command()
def validate(
    file: FileArg,
    track: TrackOpt = "reinvent_base",
    direction: DirectionOpt = None,
    race_type: RaceTypeOpt = RaceType.time_trial,
    objects: ObjectsOpt = 3,
    random_objects: RandomObjectsOpt = False,
    bots: BotsOpt = 3,
    bot_speed: BotSpeedOpt = 0.2,
    bot_lane_change: LaneChangeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the file like the console does: syntax, imports, signature, and calls on sample params."""
    from trainer.reward_validate import validate_reward

    problems = validate_reward(
        _read(file),
        **_track_args(track, direction),
        world=_world(race_type, objects, random_objects, bots, bot_speed, bot_lane_change),
        filename=file.name,
    )
    _emit({"ok": not problems, "errors": [p.as_dict() for p in problems]}, as_json, file)


@reward_app.command()
def check(
    file: FileArg,
    track: TrackOpt = "reinvent_base",
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to simulate.")] = 4,
    direction: DirectionOpt = None,
    race_type: RaceTypeOpt = RaceType.time_trial,
    objects: ObjectsOpt = 3,
    random_objects: RandomObjectsOpt = False,
    bots: BotsOpt = 3,
    bot_speed: BotSpeedOpt = 0.2,
    bot_lane_change: LaneChangeOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of the world and the drivers.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Run the function on every step of simulated episodes (reference driver and random actions)."""
    from trainer.reward_validate import check_episodes

    result = check_episodes(
        _read(file),
        episodes=episodes,
        **_track_args(track, direction),
        world=_world(race_type, objects, random_objects, bots, bot_speed, bot_lane_change),
        filename=file.name,
        seed=seed,
    )
    _emit(result, as_json, file)
