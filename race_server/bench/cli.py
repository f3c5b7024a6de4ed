"""``trackside bench sim|race|train|stream``: each prints one JSON object on stdout (``ok``, ``errors`` and
the figures); progress, if any, goes to stderr."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from race_server.cli_outcome import emit

bench_app = typer.Typer(help="Benchmarks that print one JSON object.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print only the JSON object (the only format).")]


def _print(figures: dict[str, Any]) -> None:
    emit(True, **figures)
    sys.stdout.flush()


@bench_app.command("sim")
def bench_sim(
    seconds: Annotated[float, typer.Option(help="Seconds per measurement.")] = 3.0,
    as_json: JsonOpt = True,
) -> None:
    """Simulator speed: env steps/s (camera, lidar+stereo), physics steps/s, camera fps, RSS."""
    from race_server.bench.sim import run_sim_benchmark

    _print(run_sim_benchmark(seconds))


@bench_app.command("race")
def bench_race(
    ws_clients: Annotated[int, typer.Option("--ws-clients", help="Spectator websockets on the race.")] = 500,
    seconds: Annotated[float, typer.Option(help="Seconds measured (after the run has warmed up).")] = 60.0,
    training: Annotated[bool, typer.Option("--training/--no-training", help="Run a training job alongside.")] = True,
    as_json: JsonOpt = True,
) -> None:
    """A LIVE race on a real server subprocess: lap fan-out, speed control, tick jitter, server CPU."""
    from race_server.bench.race import run_race_benchmark_full

    _print(run_race_benchmark_full(ws_clients, seconds, training))


@bench_app.command("train")
def bench_train(
    max_minutes: Annotated[float, typer.Option(help="Give up after this many minutes.")] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object (no progress lines).")] = False,
) -> None:
    """Train the default model on reinvent_base until it completes 3 of 3 evaluation laps."""
    from race_server.bench.train import run_train_benchmark

    _print(run_train_benchmark(max_minutes, log=None if as_json else (lambda line: typer.echo(line, err=True))))


@bench_app.command("live-reward")
def bench_live_reward(
    seconds: Annotated[float, typer.Option(help="Seconds measured per phase.")] = 20.0,
    as_json: JsonOpt = True,
) -> None:
    """What scoring a LIVE run's reward function costs the 15 Hz race clock."""
    from race_server.bench.live_reward import run_live_reward_benchmark

    _print(run_live_reward_benchmark(seconds))


@bench_app.command("stream")
def bench_stream(
    window_s: Annotated[float, typer.Option("--window", help="Seconds measured per viewer count.")] = 5.0,
    browser: Annotated[bool, typer.Option("--browser/--no-browser", help="Glass-to-glass in Chromium.")] = True,
    browser_window_s: Annotated[
        float, typer.Option("--browser-window", help="Seconds Chromium watches (glass-to-glass, late frames).")
    ] = 20.0,
    as_json: JsonOpt = True,
) -> None:
    """Live video: render/overlay/encode ms per 720p frame, CPU by viewers, glass-to-glass, clock jitter."""
    from race_server.bench.stream import run_stream_bench

    _print(run_stream_bench(window_s, browser_window_s if browser else None))
