"""``trackside train`` progress: remaining-time estimate, the redrawn terminal bar and the plain log lines."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from trainer.cli import register
from trainer.progress import ProgressDisplay, bar_line, clock, done_fraction, log_line, remaining_seconds
from trainer.train import IterationReport


def _report(
    iteration: int = 3,
    episodes: int = 30,
    elapsed_s: float = 90.0,
    max_minutes: float | None = None,
    max_episodes: int | None = None,
) -> IterationReport:
    return IterationReport(
        iteration=iteration,
        episodes=episodes,
        env_steps=episodes * 100,
        elapsed_s=elapsed_s,
        mean_reward=12.345,
        mean_progress=41.26,
        laps=0,
        checkpoint="3_Step-3000.ckpt",
        is_best=False,
        update_s=1.0,
        rollout_s=2.0,
        reward_s=0.1,
        updates=10,
        max_minutes=max_minutes,
        max_episodes=max_episodes,
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_remaining_is_the_nearer_stop_condition() -> None:
    # 30 episodes in 90 s = 3 s per episode
    assert remaining_seconds(90.0, 30, None, 100) == pytest.approx(210.0)
    assert remaining_seconds(90.0, 30, 10.0, None) == pytest.approx(510.0)
    assert remaining_seconds(90.0, 30, 10.0, 100) == pytest.approx(210.0)  # episodes run out first
    assert remaining_seconds(90.0, 30, 2.0, 100) == pytest.approx(30.0)  # the clock runs out first
    assert remaining_seconds(130.0, 30, 2.0, None) == 0.0  # past the limit, waiting for the iteration to end
    assert remaining_seconds(5.0, 0, None, 100) is None  # no episode yet, no rate to project
    assert remaining_seconds(5.0, 0, 1.0, 100) == pytest.approx(55.0)
    assert remaining_seconds(90.0, 30, None, None) is None


def test_done_fraction_and_clock() -> None:
    assert done_fraction(90.0, 30, None, 100) == pytest.approx(0.3)
    assert done_fraction(90.0, 30, 2.0, 100) == pytest.approx(0.75)
    assert done_fraction(500.0, 30, 2.0, None) == 1.0
    assert done_fraction(90.0, 30, None, None) is None
    assert clock(3725.9) == "1:02:05"
    assert clock(-4.0) == "0:00:00"


def test_lines_show_episodes_reward_progress_and_times() -> None:
    line = log_line(_report(max_episodes=100))
    assert line == (
        "iteration 3 | episodes 30/100 | mean reward 12.3 | mean progress 41.3% | elapsed 0:01:30 | remaining 0:03:30"
    )
    assert bar_line(_report(max_episodes=100)).startswith("[######..............]  30% | episodes 30/100 |")
    assert "remaining" not in log_line(_report())
    assert bar_line(_report()) == log_line(_report())  # no stop condition, nothing to fill a bar with


def test_terminal_gets_one_redrawn_line() -> None:
    term = _Terminal()
    show = ProgressDisplay(term, columns=60)
    assert show(_report(iteration=1, episodes=10, max_episodes=20)) is True
    assert show(_report(iteration=2, episodes=20, max_episodes=20)) is True
    show.finish()
    text = term.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    draws = text[:-1].split("\r")[1:]
    assert len(draws) == 2
    assert all(len(d.removesuffix("\x1b[K")) <= 59 for d in draws)
    assert draws[-1].startswith("[####################] 100% | episodes 20/20")


def test_log_gets_a_line_per_iteration() -> None:
    log = io.StringIO()
    show = ProgressDisplay(log, columns=60)
    show(_report(iteration=1, episodes=10, max_episodes=20))
    show(_report(iteration=2, episodes=20, max_episodes=20))
    show.finish()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert [line.split(" |")[0] for line in lines] == ["iteration 1", "iteration 2"]
    assert len(lines[0]) > 60  # a log line is never cut to the terminal width


def test_train_cli_prints_plain_lines_when_not_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "hp.json").write_text(json.dumps({"num_epochs": 3, "num_episodes_between_training": 5}))
    app = typer.Typer()
    register(app)
    out = tmp_path / "m"
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(out),
            "--hyperparameters",
            str(tmp_path / "hp.json"),
            "--max-episodes",
            "10",
            "--workers",
            "0",
            "--envs-per-worker",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "\r" not in result.output and "\x1b" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("iteration")]
    assert [line.split(" | ")[1] for line in lines] == ["episodes 5/10", "episodes 10/10"]
    assert all("mean reward" in line and "mean progress" in line and "remaining" in line for line in lines)
    assert lines[-1].endswith("remaining 0:00:00")
    assert result.output.splitlines()[-1] == str(out)
