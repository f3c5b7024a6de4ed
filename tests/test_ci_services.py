"""Under CI a missing PostgreSQL or Redis fails the suite loudly instead of skipping tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEAD_PORT_DSN = "postgresql://postgres@127.0.0.1:9/test"


def run_inner(test: str, ci: bool, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "CI"}
    environment.update(env)
    if ci:
        environment["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("test", "env", "service"),
    [
        ("tests/test_migrations.py::test_rerun_is_a_no_op", {"TEST_DATABASE_URL": DEAD_PORT_DSN}, "PostgreSQL"),
        ("tests/test_bus.py", {"TEST_REDIS_URL": "redis://127.0.0.1:9/0"}, "Redis"),
    ],
)
def test_missing_service_fails_under_ci_and_skips_outside(test: str, env: dict[str, str], service: str) -> None:
    under_ci = run_inner(test, ci=True, **env)
    assert under_ci.returncode == 1, under_ci.stdout
    assert f"{service} at" in under_ci.stdout and "CI requires it" in under_ci.stdout
    outside = run_inner(test, ci=False, **env)
    assert outside.returncode == 0 and " skipped in " in outside.stdout, outside.stdout
