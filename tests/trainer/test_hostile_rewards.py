"""Hostile reward functions: each one fails its job with the expected code and leaves no trace."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from trainer.sandbox import RewardError, RewardSandbox

PARAMS = {
    "x": 1.0,
    "y": 2.0,
    "speed": 1.5,
    "steps": 3,
    "progress": 10.0,
    "waypoints": [[0.0, 0.0], [1.0, 0.0], [2.0, 1.0]],
    "closest_waypoints": [0, 1],
}


@dataclass
class Trap:
    """A world-writable directory the hostile code would write its sentinel into, and a listener
    on 127.0.0.1 that it would connect to."""

    directory: Path
    listener: socket.socket

    @property
    def sentinel(self) -> Path:
        return self.directory / "sentinel"

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def untouched(self) -> None:
        assert list(self.directory.iterdir()) == [], "the reward function wrote a file"
        self.listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            self.listener.accept()


@pytest.fixture
def trap() -> Iterator[Trap]:
    directory = Path(tempfile.mkdtemp(prefix="trackside-trap-"))
    directory.chmod(0o777)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield Trap(directory, listener)
    finally:
        listener.close()
        shutil.rmtree(directory, ignore_errors=True)


def body(lines: str) -> str:
    """A reward function whose body is ``lines``: unindented lines go at the body's level, indented
    ones keep their indentation (absolute within the function)."""
    out = [line if line[:1].isspace() else f"    {line}" for line in lines.split("\n")]
    return "def reward_function(params):\n" + "".join(f"{line}\n" for line in out)


# (id, source, expected code). {sentinel} and {port} are filled in from the trap.
CASES: list[tuple[str, str, str]] = [
    ("read_etc_passwd", body("return len(open('/etc/passwd').read())"), "FORBIDDEN"),
    ("open_socket", "import socket\n" + body("socket.socket()\nreturn 1.0"), "IMPORT_ERROR"),
    (
        "connect_postgres_port",
        "import socket\n" + body("socket.create_connection(('127.0.0.1', {port}))\nreturn 1.0"),
        "IMPORT_ERROR",
    ),
    ("os_fork", "import os\n" + body("os.fork()\nreturn 1.0"), "IMPORT_ERROR"),
    (
        "subprocess_run",
        "import subprocess\n" + body("subprocess.run(['touch', '{sentinel}'])\nreturn 1.0"),
        "IMPORT_ERROR",
    ),
    ("infinite_loop", body("while True:\n        pass"), "TIMEOUT"),
    ("allocate_10_gb", body("x = bytearray(10 * 1024 ** 3)\nreturn 1.0"), "RESOURCE_LIMIT"),
    (
        "numpy_10_gb",
        "import numpy as np\n" + body("x = np.ones(10 * 1024 ** 3 // 8)\nreturn float(x[0])"),
        "RESOURCE_LIMIT",
    ),
    ("recursion_bomb", "def f(n):\n    return f(n + 1)\n" + body("return f(0)"), "RUNTIME_ERROR"),
    ("import_sys", "import sys\n" + body("sys.exit(0)"), "IMPORT_ERROR"),
    ("import_ctypes", "import ctypes\n" + body("return 1.0"), "IMPORT_ERROR"),
    ("import_importlib", "import importlib\n" + body("return importlib.import_module('os').getpid()"), "IMPORT_ERROR"),
    ("import_builtins", "import builtins\n" + body("return builtins.open('/etc/passwd')"), "IMPORT_ERROR"),
    ("import_pickle", "import pickle\n" + body("return 1.0"), "IMPORT_ERROR"),
    ("import_marshal", "import marshal\n" + body("return 1.0"), "IMPORT_ERROR"),
    (
        "import_signal",
        "import signal\n" + body("signal.signal(signal.SIGTERM, signal.SIG_IGN)\nreturn 1.0"),
        "IMPORT_ERROR",
    ),
    ("dunder_import_os", body("os = __import__('os')\nreturn os.getpid()"), "FORBIDDEN"),
    ("builtins_subscript_open", body("f = __builtins__['open']\nreturn 1.0"), "FORBIDDEN"),
    ("getattr_builtins_open", body("f = getattr(__builtins__, 'op' + 'en')\nreturn 1.0"), "FORBIDDEN"),
    ("subclasses_walk", body("classes = ().__class__.__bases__[0].__subclasses__()\nreturn len(classes)"), "FORBIDDEN"),
    ("numpy_load", "import numpy as np\n" + body("return float(np.load('/etc/passwd'))"), "FORBIDDEN"),
    ("numpy_fromfile", "import numpy\n" + body("return float(numpy.fromfile('/etc/passwd')[0])"), "FORBIDDEN"),
    ("numpy_ctypeslib", "from numpy import ctypeslib\n" + body("return 1.0"), "FORBIDDEN"),
    ("numpy_save", "import numpy as np\n" + body("np.save('{sentinel}', np.zeros(3))\nreturn 1.0"), "FORBIDDEN"),
    ("ndarray_tofile", "import numpy as np\n" + body("np.zeros(3).tofile('{sentinel}')\nreturn 1.0"), "FORBIDDEN"),
    ("scipy_io_savemat", "from scipy import io\n" + body("io.savemat('{sentinel}', {{}})\nreturn 1.0"), "FORBIDDEN"),
    ("random_dict", "import random\n" + body("return len(random.__dict__)"), "FORBIDDEN"),
    ("math_loader", "import math\n" + body("return math.__loader__"), "FORBIDDEN"),
    ("random_private_os", "import random\n" + body("random._os.system('touch {sentinel}')\nreturn 1.0"), "FORBIDDEN"),
    (
        "swallowed_violation",
        "import random\n" + body("try:\n        random._os\n    except Exception:\n        pass\n    return 1.0"),
        "FORBIDDEN",
    ),
    (
        "generator_frame_walk",
        "def g():\n    yield 1\n" + body("gen = g()\nframe = gen.gi_frame.f_back\nreturn 1.0"),
        "FORBIDDEN",
    ),
    (
        "traceback_frame_globals",
        body(
            "try:\n        1 / 0\n    except ZeroDivisionError as e:\n"
            "        g = e.__traceback__.tb_frame.f_globals\n    return 1.0"
        ),
        "FORBIDDEN",
    ),
    ("type_mro_walk", body("base = type(params).mro()[-1]\nreturn 1.0"), "FORBIDDEN"),
    ("breakpoint", body("breakpoint()\nreturn 1.0"), "FORBIDDEN"),
    ("eval_string", body("return eval('1 + 1')"), "FORBIDDEN"),
    ("exec_string", body("exec('import os')\nreturn 1.0"), "FORBIDDEN"),
    ("compile_code", body("c = compile('1', 'x', 'eval')\nreturn 1.0"), "FORBIDDEN"),
    ("globals_call", body("return len(globals())"), "FORBIDDEN"),
    ("vars_call", body("return len(vars())"), "FORBIDDEN"),
    ("format_dunder", body("s = '{{0.__class__.__init__.__globals__}}'.format(params)\nreturn 1.0"), "FORBIDDEN"),
    ("format_map", body("s = '{{x}}'.format_map(params)\nreturn 1.0"), "FORBIDDEN"),
    (
        "decorator_grabs_globals",
        "def grab(f):\n    return f.__globals__\n@grab\ndef h():\n    pass\n" + body("return 1.0"),
        "FORBIDDEN",
    ),
    (
        "metaclass_trick",
        "class Meta(type):\n    def __new__(mcs, name, bases, ns):\n"
        "        return super().__new__(mcs, name, bases, ns)\n"
        "class A(metaclass=Meta):\n    x = 1\n" + body("return len(A.__mro__)"),
        "FORBIDDEN",
    ),
    # the standard library the console allowed must not open a way out
    (
        "traceback_walk_stack",
        "import traceback\n" + body("f = list(traceback.walk_stack(None))\nreturn 1.0"),
        "FORBIDDEN",
    ),
    ("traceback_print_stack", "import traceback\n" + body("traceback.print_stack()\nreturn 1.0"), "FORBIDDEN"),
    ("traceback_reaches_sys", "import traceback\n" + body("m = traceback.sys.modules\nreturn 1.0"), "IMPORT_ERROR"),
    ("typing_reaches_sys", "import typing\n" + body("t = typing\nm = t.sys.modules['os']\nreturn 1.0"), "FORBIDDEN"),
    (
        "functools_reaches_private",
        "import functools\n" + body("m = functools._lru_cache_wrapper\nreturn 1.0"),
        "FORBIDDEN",
    ),
    ("json_load_file", "import json\n" + body("return len(json.load(open('/etc/passwd')))"), "FORBIDDEN"),
    ("time_sleep_forever", "import time\n" + body("time.sleep(3600)\nreturn 1.0"), "TIMEOUT"),
    ("system_exit", body("raise SystemExit(0)"), "RUNTIME_ERROR"),
    ("keyboard_interrupt", body("raise KeyboardInterrupt"), "RUNTIME_ERROR"),
    ("returns_nan", body("return float('nan')"), "BAD_RETURN"),
    ("returns_inf", body("return float('inf')"), "BAD_RETURN"),
    ("returns_huge", body("return 1e6"), "BAD_RETURN"),
    ("returns_string", body("return 'fast'"), "BAD_RETURN"),
    ("returns_none", body("x = 1"), "BAD_RETURN"),
    ("returns_huge_int", body("return 10 ** 400"), "BAD_RETURN"),
    ("module_level_loop", "while True:\n    pass\n" + body("return 1.0"), "TIMEOUT"),
    ("module_level_io", "data = open('/etc/passwd').read()\n" + body("return 1.0"), "FORBIDDEN"),
    ("no_reward_function", "def reward(params):\n    return 1.0\n", "BAD_SIGNATURE"),
    ("syntax_error", "def reward_function(params)\n    return 1.0\n", "SYNTAX_ERROR"),
]


@pytest.mark.parametrize(("source", "code"), [(s, c) for _, s, c in CASES], ids=[i for i, _, _ in CASES])
def test_hostile_reward_is_contained(trap: Trap, source: str, code: str) -> None:
    text = source.format(sentinel=trap.sentinel, port=trap.port)
    sandbox = RewardSandbox(text, call_timeout_s=1.0, memory_mb=512)

    def three_calls() -> None:
        with sandbox:
            for _ in range(3):
                sandbox(dict(PARAMS))

    with pytest.raises(RewardError) as info:
        three_calls()
    assert info.value.code == code, info.value.message
    assert info.value.message
    trap.untouched()
    if code not in ("RUNTIME_ERROR", "BAD_RETURN"):
        assert sandbox.pid is None  # fatal errors end the sandbox process


def test_case_count() -> None:
    assert len(CASES) >= 30
    assert len({i for i, _, _ in CASES}) == len(CASES)


def test_time_bomb_after_n_calls_times_out(trap: Trap) -> None:
    source = "calls = 0\n" + body(
        "global calls\ncalls += 1\nif calls > 40:\n        while True:\n            pass\nreturn 1.0"
    )
    with RewardSandbox(source, call_timeout_s=0.5) as sandbox:
        assert sandbox.call_many([dict(PARAMS)] * 40) == [1.0] * 40
        with pytest.raises(RewardError) as info:
            sandbox(dict(PARAMS))
    assert info.value.code == "TIMEOUT"
    trap.untouched()


def test_slow_leak_across_calls_hits_the_memory_limit() -> None:
    source = "hoard = []\n" + body("hoard.append(bytearray(20 * 1024 * 1024))\nreturn float(len(hoard))")
    with RewardSandbox(source, memory_mb=200) as sandbox:
        values: list[float] = []

        def fifty_calls() -> None:
            for _ in range(50):
                values.append(sandbox(dict(PARAMS)))

        with pytest.raises(RewardError) as info:
            fifty_calls()
    assert info.value.code == "RESOURCE_LIMIT"
    assert values[:3] == [1.0, 2.0, 3.0]  # state persisted until the limit
    assert 3 <= len(values) < 50


def test_cpu_time_limit_ends_the_job() -> None:
    source = body("x = 0\nwhile True:\n        x += 1")
    with RewardSandbox(source, cpu_seconds=1, call_timeout_s=30.0) as sandbox, pytest.raises(RewardError) as info:
        sandbox(dict(PARAMS))
    assert info.value.code == "RESOURCE_LIMIT"
    assert "CPU" in info.value.message


def test_mutating_params_changes_nothing_outside_the_call() -> None:
    source = body("params['waypoints'].clear()\nparams['x'] = 99.0\nparams.clear()\nreturn 1.0") + (
        "def unused():\n    pass\n"
    )
    checker = body("n = len(params['waypoints'])\nparams['waypoints'].pop()\nreturn float(n)")
    original = {k: (list(v) if isinstance(v, list) else v) for k, v in PARAMS.items()}
    params = dict(PARAMS)
    with RewardSandbox(source) as sandbox:
        assert sandbox(params) == 1.0
    assert params == original
    with RewardSandbox(checker) as sandbox:
        assert [sandbox(params) for _ in range(3)] == [3.0, 3.0, 3.0]  # each call sees all waypoints
    assert params == original


def test_a_failed_job_does_not_affect_the_next_one(trap: Trap) -> None:
    with pytest.raises(RewardError), RewardSandbox(body("while True:\n        pass"), call_timeout_s=0.3) as bad:
        bad(dict(PARAMS))
    with RewardSandbox(body("return params['speed']")) as good:
        assert good(dict(PARAMS)) == 1.5
    assert os.getpid() > 0
    trap.untouched()


async def test_server_keeps_serving_while_a_hostile_job_fails(live_server: Any) -> None:
    import asyncio
    import time

    import httpx

    memory_eater = "hoard = []\n" + body("while True:\n        hoard.append(bytearray(50 * 1024 * 1024))")
    busy_loop = body("x = 0\nwhile True:\n        x += 1")

    def run_job(source: str) -> str:
        try:
            # touching memory is slow on small VMs: a long call timeout lets the memory limit act first
            timeout = 60.0 if source is memory_eater else 3.0
            with RewardSandbox(source, call_timeout_s=timeout, memory_mb=300) as sandbox:
                sandbox(dict(PARAMS))
        except RewardError as error:
            return error.code
        return "no error"

    jobs = asyncio.gather(asyncio.to_thread(run_job, memory_eater), asyncio.to_thread(run_job, busy_loop))
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=live_server.url, timeout=2.0) as client:
        while not jobs.done() or len(latencies) < 5:
            start = time.monotonic()
            response = await client.get("/healthz")
            latencies.append(time.monotonic() - start)
            assert response.status_code == 200
            await asyncio.sleep(0.05)
    assert list(await jobs) == ["RESOURCE_LIMIT", "TIMEOUT"]
    assert len(latencies) >= 5
    assert max(latencies) < 1.0
