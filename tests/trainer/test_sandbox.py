"""The sandbox process: calls, state, batching, error classification and the OS layer on its own."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from trainer.reward_validate import episode_params, world_config
from trainer.sandbox import RewardError, RewardSandbox, measure_overhead

COUNTER = """
import math
calls = 0

def reward_function(params):
    global calls
    calls += 1
    return calls + math.floor(params["speed"]) * 0
"""


@pytest.fixture(scope="module")
def real_params() -> list[dict[str, object]]:
    return [p for _, _, p in episode_params(world_config("reinvent_base"), episodes=1, seed=3, max_steps=60)]


def test_module_state_persists_within_a_job_and_resets_with_a_new_one() -> None:
    with RewardSandbox(COUNTER) as sandbox:
        assert [sandbox({"speed": 1.0}) for _ in range(3)] == [1.0, 2.0, 3.0]
        first_pid = sandbox.pid
    with RewardSandbox(COUNTER) as sandbox:
        assert sandbox({"speed": 1.0}) == 1.0
        assert sandbox.pid != first_pid


def test_call_many_matches_single_calls(real_params: list[dict[str, object]]) -> None:
    source = (
        "import numpy as np\n"
        "def reward_function(params):\n"
        "    wp = np.array(params['waypoints'])\n"
        "    nxt = wp[params['closest_waypoints'][1]]\n"
        "    return float(np.hypot(nxt[0] - params['x'], nxt[1] - params['y'])) + params['progress']\n"
    )
    with RewardSandbox(source) as a, RewardSandbox(source) as b:
        single = [a(p) for p in real_params]
        batched = b.call_many(real_params)
    assert single == batched
    assert len(set(single)) > 10


def test_waypoints_follow_the_params_when_they_change() -> None:
    source = "def reward_function(params):\n    return float(len(params['waypoints']))\n"
    with RewardSandbox(source) as sandbox:
        assert sandbox({"waypoints": [[0.0, 0.0]] * 5}) == 5.0
        assert sandbox({"waypoints": [[0.0, 0.0]] * 7}) == 7.0
        mixed = [{"waypoints": [[1.0, 1.0]] * 2}, {"waypoints": [[1.0, 1.0]] * 4}]
        assert sandbox.call_many(mixed) == [2.0, 4.0]


def test_batch_error_names_the_step_and_recoverable_errors_keep_the_process() -> None:
    source = "def reward_function(params):\n    return 1.0 / params['d']\n"
    with RewardSandbox(source) as sandbox:
        with pytest.raises(RewardError) as info:
            sandbox.call_many([{"d": 1.0}, {"d": 2.0}, {"d": 0.0}, {"d": 4.0}])
        assert (info.value.code, info.value.index, info.value.line) == ("RUNTIME_ERROR", 2, 2)
        assert "ZeroDivisionError" in info.value.message
        assert sandbox({"d": 4.0}) == 0.25  # same process, still serving


def test_fatal_error_ends_the_process_and_later_calls_fail_clearly() -> None:
    with RewardSandbox("def reward_function(params):\n    while True:\n        pass\n", call_timeout_s=0.3) as sandbox:
        with pytest.raises(RewardError) as first:
            sandbox({})
        assert first.value.code == "TIMEOUT"
        with pytest.raises(RewardError) as again:
            sandbox({})
    assert again.value.code == "TIMEOUT"
    assert "already failed" in again.value.message


def test_numpy_values_in_params_are_accepted() -> None:
    import numpy as np

    with RewardSandbox("def reward_function(params):\n    return params['a'] + sum(params['b'])\n") as sandbox:
        assert sandbox({"a": np.float32(1.5), "b": np.arange(3)}) == 4.5


def test_prints_are_captured_not_mixed_into_the_protocol() -> None:
    with RewardSandbox("def reward_function(params):\n    print('hello from reward')\n    return 2\n") as sandbox:
        assert sandbox({}) == 2.0
        sandbox.close()
    assert "hello from reward" in sandbox.output


def test_allowed_libraries_work_inside_the_sandbox(real_params: list[dict[str, object]]) -> None:
    source = (
        "import math, random\n"
        "import numpy as np\n"
        "from scipy.spatial import distance\n"
        "from shapely.geometry import Point, Polygon\n"
        "import scipy.interpolate\n"
        "rng = random.Random(4)\n"
        "def reward_function(params):\n"
        "    wp = params['waypoints']\n"
        "    poly = Polygon(wp[:-1])\n"
        "    d = distance.euclidean(wp[0], wp[1])\n"
        "    f = scipy.interpolate.interp1d([0, 1], [0, 1])\n"
        "    inside = poly.contains(Point(params['x'], params['y']))\n"
        "    return float(np.clip(d + float(f(0.5)) + inside + rng.random() * 0 + math.pi * 0, 0, 10))\n"
    )
    with RewardSandbox(source) as sandbox:
        values = sandbox.call_many(real_params[:5])
    assert all(0.0 < v <= 10.0 for v in values)


def test_unsupported_module_level_lazy_import_is_reported() -> None:
    with pytest.raises(RewardError) as info:
        RewardSandbox("import pandas\ndef reward_function(params):\n    return 1\n").start()
    assert (info.value.code, info.value.line) == ("IMPORT_ERROR", 1)


def test_per_step_overhead_is_small() -> None:
    single = measure_overhead(400)
    batched = measure_overhead(2000, batch=100)
    assert 0.0 < batched < single < 2000.0


# --------------------------------------------------------------------- the OS layer on its own


@pytest.fixture
def open_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="trackside-os-"))
    directory.chmod(0o777)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def os_only(body: str) -> str:
    return "import os, socket, subprocess, threading\ndef reward_function(params):\n" + "".join(
        f"    {line}\n" for line in body.split("\n")
    )


def run_unguarded(source: str) -> RewardError:
    with pytest.raises(RewardError) as info, RewardSandbox(source, python_guards=False) as sandbox:
        sandbox({})
    return info.value


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chroot, network namespace and uid drop need root")


@needs_root
def test_all_os_layers_are_applied() -> None:
    with RewardSandbox("def reward_function(params):\n    return 1\n") as sandbox:
        assert set(sandbox.layers) >= {"netns", "chroot", "uid", "no_new_privs", "rlimits", "seccomp", "audit"}


@needs_root
def test_os_layer_hides_the_file_system() -> None:
    error = run_unguarded(os_only("return len(open('/etc/passwd').read())"))
    assert "FileNotFoundError" in error.message
    with RewardSandbox(os_only("return float(len(os.listdir('/')))"), python_guards=False) as sandbox:
        assert sandbox({}) == 0.0  # an empty root


def test_os_layer_refuses_file_writes(open_dir: Path) -> None:
    error = run_unguarded(os_only(f"open('{open_dir}/x', 'w').write('x')\nreturn 1"))
    assert error.code == "RUNTIME_ERROR"
    assert list(open_dir.iterdir()) == []


def test_os_layer_refuses_sockets() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        error = run_unguarded(os_only(f"s = socket.socket()\ns.connect(('127.0.0.1', {port}))\nreturn 1"))
        assert "PermissionError" in error.message
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()


def test_os_layer_refuses_processes_and_threads(open_dir: Path) -> None:
    assert "PermissionError" in run_unguarded(os_only("os.fork()\nreturn 1")).message
    assert "PermissionError" in run_unguarded(os_only(f"subprocess.run(['touch', '{open_dir}/y'])\nreturn 1")).message
    error = run_unguarded(os_only("t = threading.Thread(target=print)\nt.start()\nreturn 1"))
    assert "thread" in error.message
    assert list(open_dir.iterdir()) == []


def test_os_layer_refuses_signals_to_other_processes() -> None:
    error = run_unguarded(os_only(f"os.kill({os.getpid()}, 9)\nreturn 1"))
    assert "PermissionError" in error.message
