"""``trackside bench train``: minutes until the default model completes 3 of 3 evaluation laps.

The measuring loop is ``trainer.bench.run_train_benchmark``: it drives the PPO trainer, and torch
is imported in ``trainer`` only, so this module imports it when the benchmark runs, not before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def run_train_benchmark(max_minutes: float = 60.0, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    from trainer.bench import run_train_benchmark as measure

    return measure(max_minutes, log=log)
