"""Console-style validation of an untrusted reward file: static rules, then sample calls in the sandbox.

The static rules give early errors that name the line; they are not the security boundary (the
sandbox process is), so they err on the side of refusing anything reward functions never need.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

# The console let reward files import the standard library and barred what reaches outside
# (processes, files, network, interpreter internals). The sandbox process is the boundary here, so
# the list follows the console's: the standard library's computation modules, plus the libraries.
STDLIB_ROOTS: tuple[str, ...] = (
    "abc", "bisect", "calendar", "cmath", "collections", "colorsys", "copy", "datetime", "decimal",
    "enum", "fractions", "functools", "heapq", "itertools", "json", "math", "numbers", "operator",
    "random", "re", "statistics", "string", "textwrap", "time", "traceback", "typing",
)  # fmt: skip
LIBRARY_ROOTS: tuple[str, ...] = ("numpy", "scipy", "shapely")
ALLOWED_ROOTS: tuple[str, ...] = STDLIB_ROOTS + LIBRARY_ROOTS
# Public parts of the allowed libraries that touch files, load native code or spawn processes.
FORBIDDEN_MODULES: frozenset[str] = frozenset(
    {
        "numpy.ctypeslib",
        "numpy.f2py",
        "numpy.distutils",
        "numpy.testing",
        "numpy.lib.npyio",
        "numpy.lib.format",
        "numpy.lib.recfunctions",
        "numpy.lib.user_array",
        "numpy.lib.array_utils",
        "numpy.lib.introspect",
        "numpy.typing",
        "numpy.doc",
        "numpy.conftest",
        "scipy.io",
        "scipy.datasets",
        "scipy.misc",
        "scipy.conftest",
    }
)
FORBIDDEN_MODULE_ATTRS: frozenset[str] = frozenset(
    {
        "numpy.load",
        "numpy.loadtxt",
        "numpy.save",
        "numpy.savez",
        "numpy.savez_compressed",
        "numpy.savetxt",
        "numpy.fromfile",
        "numpy.genfromtxt",
        "numpy.fromregex",
        "numpy.memmap",
        "numpy.show_config",
        "numpy.show_runtime",
        "numpy.get_include",
        "numpy.info",
        "numpy.DataSource",
        "numpy.lib.DataSource",
        "numpy.lib.NumpyVersion",
        "scipy.show_config",
        "scipy.test",
        "numpy.test",
    }
)
# File and native-memory methods reachable from ordinary objects (ndarray.tofile, ndarray.ctypes, ...).
FORBIDDEN_ATTRS: frozenset[str] = frozenset(
    {
        "tofile",
        "fromfile",
        "dump",
        "ctypes",
        "ctypeslib",
        "memmap",
        "savetxt",
        "loadtxt",
        "genfromtxt",
        "mro",
        # frame, code and traceback introspection: the classic ways out of restricted globals
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "gi_running",
        "cr_frame",
        "cr_code",
        "cr_await",
        "ag_frame",
        "ag_code",
        "ag_await",
        "tb_frame",
        "tb_next",
        "f_back",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_code",
        "f_trace",
        "co_code",
        "co_consts",
        "co_names",
        "func_globals",
        "format_map",
    }
)
FORBIDDEN_NAMES: frozenset[str] = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "open",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "locals",
        "vars",
        "breakpoint",
        "input",
        "help",
        "exit",
        "quit",
        "memoryview",
        "copyright",
        "credits",
        "license",
    }
)
ALLOWED_DUNDER_NAMES: frozenset[str] = frozenset({"__name__", "__doc__"})
REWARD_LIMIT = 1e5
ENTRY_POINT = "reward_function"

# A format field that reaches an attribute or item starting with "_" ("{0.__class__}", "{x[_y]}").
_FORMAT_FIELD = re.compile(r"\{[^{}]*[.\[]\s*_")


@dataclass(frozen=True)
class RewardProblem:
    """One reason a reward file is rejected. ``line`` is 1-based in the reward file, or None."""

    code: str
    message: str
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def module_allowed(name: str) -> RewardProblem | None:
    """None when ``name`` may be imported, else why not (line left for the caller)."""
    parts = name.split(".")
    if parts[0] not in ALLOWED_ROOTS:
        return RewardProblem(
            "IMPORT_ERROR",
            f"import of {name!r} is not allowed: reward functions may import only {', '.join(ALLOWED_ROOTS)}",
        )
    if any(p.startswith("_") for p in parts):
        return RewardProblem("FORBIDDEN", f"import of private module {name!r} is not allowed")
    for i in range(2, len(parts) + 1):
        prefix = ".".join(parts[:i])
        if prefix in FORBIDDEN_MODULES:
            return RewardProblem("FORBIDDEN", f"{prefix!r} reads/writes files or loads native code; not allowed")
    return None


def _has_one_param(fn: ast.FunctionDef) -> bool:
    a = fn.args
    positional = len(a.posonlyargs) + len(a.args)
    required = positional - len(a.defaults)
    required_kwonly = sum(1 for d in a.kw_defaults if d is None)
    return required_kwonly == 0 and required <= 1 and (positional >= 1 or a.vararg is not None)


class _Checker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.problems: list[RewardProblem] = []
        self.aliases: dict[str, str] = {}  # local name -> module path, for `np.load`-style checks
        self.modules: dict[str, int] = {}  # modules the file names (to pre-load) -> first line

    def _bad(self, code: str, message: str, node: ast.AST) -> None:
        self.problems.append(RewardProblem(code, message, getattr(node, "lineno", None)))

    def _import(self, name: str, node: ast.AST) -> bool:
        problem = module_allowed(name)
        if problem is not None:
            self._bad(problem.code, problem.message, node)
            return False
        self.modules.setdefault(name, getattr(node, "lineno", 0))
        return True

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if self._import(alias.name, node):
                if alias.asname:
                    self.aliases[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    self.aliases[root] = root

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self._bad("IMPORT_ERROR", "relative imports are not allowed in a reward file", node)
            return
        module = node.module or ""
        if not self._import(module, node):
            return
        for alias in node.names:
            if alias.name == "*":
                continue
            full = f"{module}.{alias.name}"
            if alias.name.startswith("_"):
                self._bad("FORBIDDEN", f"import of private name {full!r} is not allowed", node)
            elif full in FORBIDDEN_MODULES or full in FORBIDDEN_MODULE_ATTRS or alias.name in FORBIDDEN_ATTRS:
                self._bad("FORBIDDEN", f"{full!r} reads/writes files or loads native code; not allowed", node)
            else:
                self.modules.setdefault(full, node.lineno)  # may be a submodule: pre-load if so
                self.aliases[alias.asname or alias.name] = full

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if name in FORBIDDEN_NAMES:
            self._bad("FORBIDDEN", f"{name}() is not available in reward functions", node)
        elif name.startswith("__") and name not in ALLOWED_DUNDER_NAMES:
            self._bad("FORBIDDEN", f"access to {name} is not allowed in reward functions", node)

    def _dotted(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self._dotted(node.value)
            return None if base is None else f"{base}.{node.attr}"
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        if attr.startswith("__"):
            self._bad("FORBIDDEN", f"access to attribute {attr!r} is not allowed in reward functions", node)
        elif attr in FORBIDDEN_ATTRS:
            self._bad("FORBIDDEN", f"attribute {attr!r} is not allowed in reward functions", node)
        else:
            dotted = self._dotted(node)
            if dotted is not None:
                problem = module_allowed(dotted)
                if problem is not None and problem.code == "FORBIDDEN":
                    self._bad("FORBIDDEN", problem.message, node)
                elif dotted in FORBIDDEN_MODULE_ATTRS:
                    self._bad("FORBIDDEN", f"{dotted!r} reads/writes files; not allowed in reward functions", node)
                elif problem is None and dotted.count(".") >= 1:
                    # `scipy.spatial.distance` names a submodule that must be loaded before lock-down
                    self.modules.setdefault(dotted, node.lineno)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and _FORMAT_FIELD.search(node.value):
            self._bad("FORBIDDEN", "format fields that reach attributes starting with '_' are not allowed", node)


def check_source(source: str, filename: str = "reward_function.py") -> tuple[list[RewardProblem], dict[str, int]]:
    """Static rules. Returns (problems, modules named by the file -> first line)."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        return [RewardProblem("SYNTAX_ERROR", f"{exc.msg}", exc.lineno)], {}
    except ValueError as exc:  # null bytes
        return [RewardProblem("SYNTAX_ERROR", str(exc), None)], {}
    checker = _Checker()
    checker.visit(tree)
    problems = checker.problems
    entry = _entry_point(tree)
    if entry is None:
        problems.append(
            RewardProblem("BAD_SIGNATURE", f"no module-level function {ENTRY_POINT}(params) is defined", None)
        )
    elif isinstance(entry, ast.AsyncFunctionDef):
        problems.append(
            RewardProblem("BAD_SIGNATURE", f"{ENTRY_POINT} must be a plain function, not async", entry.lineno)
        )
    elif isinstance(entry, ast.FunctionDef) and not _has_one_param(entry):
        problems.append(
            RewardProblem("BAD_SIGNATURE", f"{ENTRY_POINT} must take exactly one argument: params", entry.lineno)
        )
    problems.sort(key=lambda p: p.line or 0)
    return problems, checker.modules


def _entry_point(tree: ast.Module) -> ast.AST | None:
    found: ast.AST | None = None
    for node in tree.body:
        if (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == ENTRY_POINT) or (
            isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == ENTRY_POINT for t in node.targets)
        ):
            found = node
    return found


def checked_reward_value(value: Any) -> tuple[float | None, str | None]:
    """(reward, None) or (None, why it is rejected) for a reward function's return value."""
    try:
        reward = float(value)
    except (TypeError, ValueError, OverflowError):
        return None, f"reward_function returned {_short_repr(value)}, which float() rejects"
    if not math.isfinite(reward) or abs(reward) > REWARD_LIMIT:
        return None, f"reward_function returned {reward!r}; it must be finite and within [-1e5, 1e5]"
    return reward, None


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a user object whose __repr__ fails still deserves a message
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= 200 else text[:197] + "..."


# ------------------------------------------------------------------------------ simulated episodes


def world_config(
    track_id: str = "reinvent_base",
    direction: str | None = None,
    route_id: str | None = None,
    reverse: bool = False,
    world: Mapping[str, Any] | None = None,
    seed: int | None = 0,
) -> Any:
    """A ``race_server.sim.env.WorldConfig``; ``world`` may hold ``objects`` / ``episode`` field mappings."""
    from race_server.sim.env import WorldConfig
    from race_server.sim.episode import EpisodeConfig
    from race_server.sim.objects import ObjectsConfig

    extra = dict(world or {})
    objects = ObjectsConfig(**dict(extra.pop("objects", {}) or {}))
    episode = EpisodeConfig(**dict(extra.pop("episode", {}) or {}))
    if extra:
        raise ValueError(f"world: unknown field(s) {sorted(extra)}; allowed: objects, episode")
    if direction is not None:
        direction = {"cw": "CLOCKWISE", "ccw": "COUNTER_CLOCKWISE"}.get(direction.lower(), direction.upper())
    config = WorldConfig(
        track_id=track_id,
        direction=direction,
        route_id=route_id,
        reverse=reverse,
        objects=objects,
        episode=episode,
        seed=seed,
    )
    config.route()  # unknown tracks and disabled directions fail here, with the simulator's message
    return config


def reference_action(params: Mapping[str, Any], max_steering: float = 30.0, speed: float = 1.2) -> tuple[float, float]:
    """Pure pursuit on the centre line: aim at the waypoint about 0.6 m ahead of the car."""
    waypoints = params["waypoints"]
    n = len(waypoints)
    x, y = params["x"], params["y"]
    i = params["closest_waypoints"][1]
    travelled = 0.0
    for _ in range(n):
        tx, ty = waypoints[i]
        travelled = math.hypot(tx - x, ty - y)
        if travelled >= 0.6:
            break
        i = (i + 1) % n
    target = math.degrees(math.atan2(ty - y, tx - x))
    error = (target - params["heading"] + 180.0) % 360.0 - 180.0
    return max(-max_steering, min(max_steering, error)), speed


def episode_params(
    config: Any, *, episodes: int, seed: int, max_steps: int = 3000
) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(episode, step, params) of simulated episodes: even episodes follow the reference driver
    (slightly noisy), odd ones take uniformly random actions (they soon leave the track)."""
    import numpy as np

    from race_server.sim.episode import Simulation
    from race_server.sim.stepper import DeepRacerStepper

    route_id, reverse = config.route()
    sim = Simulation(route_id, reverse, objects=config.objects, episode=config.episode, seed=seed)
    stepper = DeepRacerStepper(sim)
    rng = np.random.default_rng(seed)
    for episode in range(episodes):
        stepper.reset()
        for _ in range(max_steps + 1):
            seen = stepper.observed_params
            if episode % 2 == 0:
                steering, speed = reference_action(seen)
                steering += float(rng.normal(0.0, 3.0))
            else:
                steering, speed = float(rng.uniform(-30.0, 30.0)), float(rng.uniform(0.5, 4.0))
            judged = stepper.step(steering, speed)
            if judged.rewarded:  # DeepRacer calls no reward function on the prepare step
                yield episode, int(judged.params["steps"]), judged.params
            if judged.terminated or judged.truncated:
                break


def sample_params(config: Any, *, seed: int = 0) -> list[dict[str, Any]]:
    """Params a console-style test uses: a stretch of a driven lap and an episode ending off track."""
    samples: list[dict[str, Any]] = []
    for episode, step, params in episode_params(config, episodes=2, seed=seed, max_steps=300):
        if episode == 1 or step <= 60:
            samples.append(params)
    return samples


def validate_reward(
    source: str,
    *,
    track_id: str = "reinvent_base",
    direction: str | None = None,
    route_id: str | None = None,
    reverse: bool = False,
    world: Mapping[str, Any] | None = None,
    filename: str = "reward_function.py",
    call_timeout_s: float = 1.0,
    seed: int = 0,
) -> list[RewardProblem]:
    """Every problem found; an empty list means the file is fit for training.

    ``world`` holds the remaining ``WorldConfig`` fields (objects, episode) as a mapping."""
    problems, _ = check_source(source, filename)
    if problems:
        return problems
    from trainer.sandbox import RewardError, RewardSandbox

    try:
        config = world_config(track_id, direction, route_id, reverse, world, seed)
        samples = sample_params(config, seed=seed)
    except (ValueError, TypeError) as exc:
        return [RewardProblem("TEST_FAILURE", f"cannot build the test world: {exc}", None)]
    try:
        with RewardSandbox(source, filename=filename, call_timeout_s=call_timeout_s) as sandbox:
            for i, params in enumerate(samples):
                try:
                    sandbox(params)
                except RewardError as exc:
                    return [_as_problem(exc, i)]
    except RewardError as exc:
        return [_as_problem(exc, None)]
    return []


def _as_problem(exc: Any, sample: int | None) -> RewardProblem:
    code = "TEST_FAILURE" if exc.code == "RUNTIME_ERROR" else exc.code
    where = f" (test params #{sample})" if sample is not None else ""
    return RewardProblem(code, f"{exc.message}{where}", exc.line)


MAX_REPORTED_ERRORS = 20


def check_episodes(
    source: str,
    *,
    episodes: int,
    track_id: str = "reinvent_base",
    direction: str | None = None,
    route_id: str | None = None,
    reverse: bool = False,
    world: Mapping[str, Any] | None = None,
    filename: str = "reward_function.py",
    call_timeout_s: float = 1.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Call the function on every step of ``episodes`` simulated episodes; report the steps that fail.

    Returns ``{"ok", "episodes", "steps", "errors": [{code, message, line, episode, step}], "reward": stats}``;
    stops at the first error that ends the sandbox, or after ``MAX_REPORTED_ERRORS`` errors."""
    from trainer.sandbox import RECOVERABLE_CODES, RewardError, RewardSandbox

    result: dict[str, Any] = {"ok": False, "episodes": 0, "steps": 0, "errors": [], "reward": None}
    problems, _ = check_source(source, filename)
    if problems:
        result["errors"] = [p.as_dict() for p in problems]
        return result
    try:
        config = world_config(track_id, direction, route_id, reverse, world, seed)
    except (ValueError, TypeError) as exc:
        result["errors"] = [RewardProblem("BAD_WORLD", str(exc)).as_dict()]
        return result
    errors: list[dict[str, Any]] = result["errors"]
    rewards: list[float] = []
    seen: set[int] = set()
    try:
        with RewardSandbox(source, filename=filename, call_timeout_s=call_timeout_s) as sandbox:
            for episode, step, params in episode_params(config, episodes=episodes, seed=seed):
                seen.add(episode)
                result["steps"] += 1
                try:
                    rewards.append(sandbox(params))
                except RewardError as exc:
                    errors.append({**exc.as_dict(), "episode": episode, "step": step})
                    if exc.code not in RECOVERABLE_CODES or len(errors) >= MAX_REPORTED_ERRORS:
                        break
    except RewardError as exc:
        errors.append(exc.as_dict())
    result["episodes"] = len(seen)
    if rewards:
        result["reward"] = {"min": min(rewards), "max": max(rewards), "mean": sum(rewards) / len(rewards)}
    result["ok"] = not errors
    return result
