"""Training progress for ``trackside train``: a redrawn bar on a terminal, one line per iteration elsewhere."""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from trainer.train import IterationReport

BAR_WIDTH = 20


def clock(seconds: float) -> str:
    """H:MM:SS, negative times shown as zero."""
    whole = max(0, int(seconds))
    return f"{whole // 3600:d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def remaining_seconds(
    elapsed_s: float, episodes: int, max_minutes: float | None, max_episodes: int | None
) -> float | None:
    """Time left until the first stop condition that will be hit; None when there is nothing to go on.

    The episode limit is projected at the mean episode rate so far, so it needs at least one episode."""
    estimates: list[float] = []
    if max_minutes is not None:
        estimates.append(max_minutes * 60.0 - elapsed_s)
    if max_episodes is not None and episodes > 0:
        estimates.append(elapsed_s / episodes * (max_episodes - episodes))
    return max(0.0, min(estimates)) if estimates else None


def done_fraction(elapsed_s: float, episodes: int, max_minutes: float | None, max_episodes: int | None) -> float | None:
    """Share of the run done, by whichever stop condition is nearer; None without a stop condition."""
    fractions: list[float] = []
    if max_minutes is not None and max_minutes > 0:
        fractions.append(elapsed_s / (max_minutes * 60.0))
    if max_episodes is not None and max_episodes > 0:
        fractions.append(episodes / max_episodes)
    return min(1.0, max(fractions)) if fractions else None


def progress_text(report: IterationReport) -> str:
    """The numbers of one iteration, shared by the bar and the log line."""
    total = f"/{report.max_episodes}" if report.max_episodes is not None else ""
    left = remaining_seconds(report.elapsed_s, report.episodes, report.max_minutes, report.max_episodes)
    remaining = "" if left is None else f" | remaining {clock(left)}"
    return (
        f"episodes {report.episodes}{total} | mean reward {report.mean_reward:.1f}"
        f" | mean progress {report.mean_progress:.1f}% | elapsed {clock(report.elapsed_s)}{remaining}"
    )


def log_line(report: IterationReport) -> str:
    return f"iteration {report.iteration} | {progress_text(report)}"


def bar_line(report: IterationReport, width: int = BAR_WIDTH) -> str:
    fraction = done_fraction(report.elapsed_s, report.episodes, report.max_minutes, report.max_episodes)
    if fraction is None:
        return log_line(report)
    filled = round(fraction * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:3.0f}% | {progress_text(report)}"


class ProgressDisplay:
    """Writes iteration reports to ``stream``: on a terminal one line redrawn in place, else a line each."""

    def __init__(self, stream: TextIO, columns: int = 120) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.columns = columns
        self._drawn = False

    def __call__(self, report: IterationReport) -> bool:
        if self.tty:
            # \x1b[K clears what a longer previous line left; cutting to the width keeps the line from wrapping,
            # which would break the carriage-return redraw
            self.stream.write("\r" + bar_line(report)[: max(self.columns - 1, 1)] + "\x1b[K")
            self._drawn = True
        else:
            self.stream.write(log_line(report) + "\n")
        self.stream.flush()
        return True

    def finish(self) -> None:
        """End the redrawn line so later output starts on a fresh one."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
