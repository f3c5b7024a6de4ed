"""The car client stays small: importing it (and everything a real car runs) loads no server
package, no MuJoCo, no torch; only the simulated backend may pull in race_server.sim."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CAR_MODULES = (
    "car_client",
    "car_client.cli",
    "car_client.link",
    "car_client.controller",
    "car_client.inference",
    "car_client.calibration",
    "car_client.navigation",
    "car_client.backends",
    "car_client.backends.pwm",
    "car_client.timer",
)
FORBIDDEN = ("starlette", "uvicorn", "asyncpg", "redis", "torch", "mujoco", "gymnasium", "aiortc", "httpx", "typer",
             "scipy", "shapely", "av", "onnx", "onnxruntime", "trainer")  # fmt: skip
# race_server modules a car may load: the protocol (with its input guard) and the pure lap timing
ALLOWED_RACE_SERVER = {"race_server", "race_server.protocol", "race_server.input_guard", "race_server.races",
                       "race_server.races.lap_sensor",
                       "race_server.races.timing", "race_server.races.ranking"}  # fmt: skip


def loaded(module: str) -> list[str]:
    probe = (
        f"import importlib, json, sys\nimportlib.import_module({module!r})\nprint(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_car_client_imports_no_server_package() -> None:
    for module in CAR_MODULES:
        modules = loaded(module)
        bad = sorted({m for m in modules if m.split(".")[0] in FORBIDDEN})
        assert bad == [], f"{module} imports {bad}"
        server = sorted(m for m in modules if m.startswith("race_server") and m not in ALLOWED_RACE_SERVER)
        assert server == [], f"{module} imports {server}"


def test_the_probe_sees_a_server_import() -> None:
    # The checker is not blind: the simulator the simulated backend opens lazily does load MuJoCo,
    # and the simulated backend module alone does not.
    assert "mujoco" in loaded("race_server.sim.world")
    assert "mujoco" not in loaded("car_client.backends.simulated")
