"""Console-style validation: static rules with line numbers, then sample calls on the chosen track."""

from __future__ import annotations

import pytest

from trainer.reward_validate import RewardProblem, check_episodes, check_source, validate_reward

GOOD = """
import math

def reward_function(params):
    if params["is_offtrack"]:
        return 1e-3
    width = params["track_width"]
    return max(1e-3, 1.0 - params["distance_from_center"] / (0.5 * width)) + 0 * math.pi
"""


def test_a_good_reward_function_passes() -> None:
    assert validate_reward(GOOD) == []
    assert validate_reward(GOOD, track_id="reInvent2019_track", direction="cw") == []


@pytest.mark.parametrize(
    ("source", "code", "line"),
    [
        ("def reward_function(params):\n    return (\n", "SYNTAX_ERROR", 2),
        ("import math\nimport os\ndef reward_function(params):\n    return 1\n", "IMPORT_ERROR", 2),
        ("from . import x\ndef reward_function(params):\n    return 1\n", "IMPORT_ERROR", 1),
        ("import numpy._core\ndef reward_function(params):\n    return 1\n", "FORBIDDEN", 1),
        ("def reward_function(params):\n    x = 1\n    return getattr(x, 'real')\n", "FORBIDDEN", 3),
        ("def reward_function(params):\n    return params.__class__\n", "FORBIDDEN", 2),
        ("def reward_function(a, b):\n    return 1\n", "BAD_SIGNATURE", 1),
        ("def reward(params):\n    return 1\n", "BAD_SIGNATURE", None),
    ],
)
def test_static_problems_name_the_line(source: str, code: str, line: int | None) -> None:
    problems, _ = check_source(source)
    assert problems[0].code == code
    assert problems[0].line == line
    assert validate_reward(source)[0] == problems[0]


def test_legitimate_patterns_are_allowed() -> None:
    source = (
        "import numpy as np\nfrom math import *\n\nclass Memory:\n    def __init__(self):\n        self._prev = None\n"
        "memory = Memory()\n\ndef reward_function(params, unused=None):\n    memory._prev = params['speed']\n"
        "    return float(np.mean([1.0, sqrt(4)]))\n\nif __name__ == '__main__':\n    print('ok')\n"
    )
    assert check_source(source)[0] == []
    assert validate_reward(source) == []


def test_runtime_failures_on_test_params_are_test_failures() -> None:
    source = "def reward_function(params):\n    return params['objects_location'][0][0]\n"
    problems = validate_reward(source)
    assert [(p.code, p.line) for p in problems] == [("TEST_FAILURE", 2)]
    assert "IndexError" in problems[0].message
    with_objects = {"objects": {"race_type": "OBJECT_AVOIDANCE", "number_of_obstacles": 2}}
    assert validate_reward(source, world=with_objects) == []


def test_bad_returns_and_timeouts() -> None:
    assert validate_reward("def reward_function(params):\n    return None\n")[0].code == "BAD_RETURN"
    slow = "def reward_function(params):\n    while True:\n        pass\n"
    assert validate_reward(slow, call_timeout_s=0.2)[0].code == "TIMEOUT"


def test_offtrack_steps_are_among_the_samples() -> None:
    source = "def reward_function(params):\n    assert not params['is_offtrack']\n    return 1.0\n"
    assert [p.code for p in validate_reward(source)] == ["TEST_FAILURE"]


def test_unknown_track_is_reported() -> None:
    problems = validate_reward(GOOD, track_id="no_such_track")
    assert problems[0].code == "TEST_FAILURE" and "no_such_track" in problems[0].message


def test_check_episodes_reports_failing_steps() -> None:
    source = (
        "def reward_function(params):\n    if params['steps'] == 5:\n        raise ValueError('step five')\n"
        "    return 1.0\n"
    )
    result = check_episodes(source, episodes=2, seed=1)
    assert not result["ok"]
    assert result["episodes"] == 2
    assert [(e["episode"], e["step"], e["line"]) for e in result["errors"]] == [(0, 5, 3), (1, 5, 3)]
    assert check_episodes(GOOD, episodes=2)["ok"]


def test_problem_as_dict() -> None:
    assert RewardProblem("FORBIDDEN", "m", 3).as_dict() == {"code": "FORBIDDEN", "message": "m", "line": 3}


# VilemR/AWS_DeepRacer's published reward_function.py ran on the console with `import traceback`.
CONSOLE_STDLIB_REWARD = """\
import bisect
import collections
import functools
import heapq
import itertools
import statistics
import time
import traceback
from collections import deque


@functools.lru_cache(maxsize=None)
def _weight(i):
    return 1.0 + i % 3


def reward_function(params):
    try:
        started = time.time()
        speeds = deque([params["speed"]] * 3, maxlen=3)
        counts = collections.Counter(int(s) for s in speeds)
        ahead = heapq.nsmallest(2, [abs(w[0] - params["x"]) for w in params["waypoints"][:20]])
        pairs = list(itertools.islice(itertools.pairwise(params["waypoints"]), 3))
        where = bisect.bisect_left([0.0, 25.0, 50.0, 75.0], params["progress"])
        mean = statistics.mean(speeds)
        assert time.time() >= started and pairs and counts
        return float(mean * _weight(where) + 0.001 * sum(ahead))
    except Exception:
        traceback.print_exc()
        return 1e-3
"""


def test_console_standard_library_imports_validate_and_run() -> None:
    """DeepRacer's console let reward files import the standard library (not what reaches outside)."""
    assert check_source(CONSOLE_STDLIB_REWARD)[0] == []
    assert validate_reward(CONSOLE_STDLIB_REWARD) == []


@pytest.mark.parametrize("module", ["os", "sys", "socket", "subprocess", "io", "inspect", "gc", "importlib"])
def test_modules_that_reach_outside_stay_refused(module: str) -> None:
    source = f"import {module}\ndef reward_function(params):\n    return 1.0\n"
    assert [p.code for p in check_source(source)[0]] == ["IMPORT_ERROR"]
