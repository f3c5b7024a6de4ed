"""Pure cores import no web, network, database or video library (ARCHITECTURE.md, import rules).

Each module is imported alone in a fresh interpreter and its sys.modules inspected, so a rule
broken three imports deep is still caught."""

from __future__ import annotations

import importlib.util
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

FORBIDDEN = ("starlette", "uvicorn", "websockets", "aiortc", "av", "asyncpg", "redis", "httpx", "aiohttp", "requests")

# Whole packages that are pure, and single pure modules inside packages that also hold shells.
PURE_PACKAGES = ("race_server.sim", "race_server.races", "race_server.overlay")
PURE_MODULES = (
    "race_server.protocol",
    "race_server.input_guard",
    "race_server.queue.machine",
    "race_server.models.metadata",
    "race_server.models.folder",
    "race_server.models.validation",
    "trainer.networks",
    "trainer.rollout",
    "trainer.ppo",
    "trainer.sac",
    "trainer.evaluation",
    "trainer.video_frame",
    "trainer.progress",
    "trainer.metrics",
    "trainer.checkpoint",
    "trainer.config",
    "trainer.training_log",
    "race_server.queue.run_logs",
    "race_server.models.hyperparameters",
    "race_server.bench.sim",
    "race_server.bench.camera",
)
REPO = Path(__file__).resolve().parents[1]


def exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def pure_modules_present() -> list[str]:
    found: list[str] = []
    for package in PURE_PACKAGES:
        if not exists(package):
            continue
        found.append(package)
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations is not None
        for info in pkgutil.walk_packages(list(spec.submodule_search_locations), prefix=f"{package}."):
            found.append(info.name)
    found.extend(name for name in PURE_MODULES if exists(name))
    return found


def forbidden_imports(module: str, extra_path: Path | None = None) -> list[str]:
    probe = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"roots = {FORBIDDEN!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in roots)))\n"
    )
    paths = [str(REPO)] + ([str(extra_path)] if extra_path else [])
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": ":".join(paths), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, f"importing {module} failed:\n{result.stderr}"
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_sim_core_is_among_the_checked_modules() -> None:
    present = pure_modules_present()
    # The list grows as issues land; it must never be empty, or the rule below checks nothing.
    assert "race_server.sim" in present
    assert any(name.startswith("race_server.sim.") for name in present)


@pytest.mark.parametrize("module", pure_modules_present())
def test_pure_module_imports_no_io_library(module: str) -> None:
    assert forbidden_imports(module) == []


def test_the_checker_catches_an_impure_module(tmp_path: Path) -> None:
    package = tmp_path / "impure_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    # Impure only indirectly: the offending import sits one module away.
    (package / "helper.py").write_text("import asyncpg  # noqa: F401\n")
    (package / "core.py").write_text("from impure_probe import helper  # noqa: F401\n")
    assert "asyncpg" in forbidden_imports("impure_probe.core", extra_path=tmp_path)
