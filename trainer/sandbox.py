"""Runs an untrusted reward function in its own locked-down process, one process per job.

The OS layer (``trainer/sandbox_child.py``: network namespace, empty chroot, uid nobody, rlimits,
seccomp) is the boundary; the static rules and the child's audit hook give clear early errors.
Module-level state persists across calls within one sandbox, as in DeepRacer; a new sandbox starts
from a fresh process. Any failure raises ``RewardError``; fatal ones also end the process.
"""

from __future__ import annotations

import ast
import contextlib
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import msgpack

from trainer.reward_validate import (
    ALLOWED_ROOTS,
    FORBIDDEN_ATTRS,
    FORBIDDEN_MODULE_ATTRS,
    FORBIDDEN_MODULES,
    check_source,
)

CHILD_SCRIPT = Path(__file__).resolve().parent / "sandbox_child.py"
ERROR_CODES = frozenset(
    {
        "SYNTAX_ERROR",
        "IMPORT_ERROR",
        "FORBIDDEN",
        "TIMEOUT",
        "BAD_RETURN",
        "BAD_SIGNATURE",
        "TEST_FAILURE",
        "RUNTIME_ERROR",
        "RESOURCE_LIMIT",
        "SANDBOX_CRASHED",
        "STOPPED",
        "JOB_TIME_LIMIT",
    }
)
# After these the process keeps serving (the job may still decide to stop).
RECOVERABLE_CODES = frozenset({"RUNTIME_ERROR", "BAD_RETURN"})
START_TIMEOUT_S = 60.0  # importing numpy/scipy/shapely on a busy machine
MODULE_TIMEOUT_S = 5.0  # the reward file's module-level code
MAX_FRAME = 64 * 1024 * 1024
# How often a wait for the reward function looks at Stop and the job's deadline: a batch may be
# allowed minutes (call_timeout_s per step), but a stopped or timed-out job must not wait for it.
BUDGET_POLL_S = 0.1
_HEADER = struct.Struct("<I")
_CALL, _MANY, _WAYPOINTS = 1, 2, 3
_OK = 0
_STDERR_KEEP = 64 * 1024


class RewardError(Exception):
    """A reward function failed. ``code`` is one of ``ERROR_CODES``; ``line`` is in the reward file."""

    def __init__(self, code: str, message: str, line: int | None = None, index: int | None = None) -> None:
        super().__init__(f"{code}: {message}" + (f" (line {line})" if line else ""))
        self.code = code
        self.message = message
        self.line = line
        self.index = index  # position in a call_many batch

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "line": self.line}


def _imported_modules(source: str) -> dict[str, int]:
    """Every module the file imports (pre-loaded before lock-down when the Python guards are off)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.setdefault(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.setdefault(node.module, node.lineno)
    return found


def _pack_default(obj: Any) -> Any:
    # numpy scalars and arrays from a trainer's own params building
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"params value of type {type(obj).__name__} cannot be sent to the sandbox")


class _StderrTail(threading.Thread):
    """Drains the child's stderr (prints, crash messages) so it can never block on a full pipe."""

    def __init__(self, fd: int) -> None:
        super().__init__(daemon=True, name="reward-sandbox-stderr")
        self.fd = fd
        self.buffer = bytearray()
        self.lock = threading.Lock()

    def run(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                with self.lock:
                    self.buffer += chunk
                    del self.buffer[:-_STDERR_KEEP]
        os.close(self.fd)

    def text(self) -> str:
        with self.lock:
            return self.buffer.decode("utf-8", "replace")


class RewardSandbox:
    """One isolated process running one reward file.

    ``memory_mb`` is the address space the reward function may use on top of the libraries;
    ``cpu_seconds`` the CPU time of the whole job; ``call_timeout_s`` the wall time of one call
    (a batch gets ``call_timeout_s`` per params dict). ``python_guards=False`` turns off the static
    rules, restricted builtins and audit hook, leaving only the OS layer: for testing that layer.

    The job's budget: ``cancel`` (the job's Stop) and ``deadline`` (``time.monotonic()`` at which the
    job's time limit ends) end any wait for the reward function within ``BUDGET_POLL_S``; the child
    is killed and the call raises ``RewardError`` STOPPED or JOB_TIME_LIMIT. Without them a batch
    (a whole iteration of steps) could run on for call_timeout_s × steps, past Stop and the limit.
    """

    def __init__(
        self,
        source: str,
        *,
        filename: str = "reward_function.py",
        call_timeout_s: float = 1.0,
        cpu_seconds: int = 3600,
        memory_mb: int = 1024,
        python_guards: bool = True,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
    ) -> None:
        if call_timeout_s <= 0:
            raise ValueError(f"call_timeout_s must be > 0, got {call_timeout_s}")
        self.source = source
        self.filename = filename
        self.call_timeout_s = float(call_timeout_s)
        self.cpu_seconds = int(cpu_seconds)
        self.memory_mb = int(memory_mb)
        self.python_guards = python_guards
        self.cancel = cancel
        self.deadline = deadline
        self.layers: list[str] = []
        self.calls = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._rfd = -1
        self._wfd = -1
        self._stderr: _StderrTail | None = None
        self._failed: RewardError | None = None
        self._packer = msgpack.Packer(use_bin_type=True, default=_pack_default)
        self._waypoints_obj: object = None
        self._waypoints_sent: Any = None

    # ---------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        if self._proc is not None:
            return
        modules: dict[str, int] = {}
        if self.python_guards:
            problems, modules = check_source(self.source, self.filename)
            if problems:
                first = problems[0]
                raise self._fail(RewardError(first.code, first.message, first.line))
        else:
            modules = _imported_modules(self.source)
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            # one thread per library: no thread creation after lock-down, and a fair share of 2 cores
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "NUMEXPR_NUM_THREADS": "1",
        }
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-B", str(CHILD_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd="/",
            close_fds=True,
            start_new_session=True,  # a Ctrl-C for the trainer is not delivered to user code
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None and self._proc.stderr is not None
        self._wfd = os.dup(self._proc.stdin.fileno())
        self._rfd = os.dup(self._proc.stdout.fileno())
        self._proc.stdin.close()
        self._proc.stdout.close()
        self._stderr = _StderrTail(os.dup(self._proc.stderr.fileno()))
        self._proc.stderr.close()
        self._stderr.start()
        init = {
            "source": self.source,
            "filename": self.filename,
            "modules": [[name, line] for name, line in modules.items()],
            "allowed_roots": list(ALLOWED_ROOTS),
            "forbidden_modules": sorted(FORBIDDEN_MODULES),
            "forbidden_attrs": sorted(FORBIDDEN_MODULE_ATTRS | FORBIDDEN_ATTRS),
            "python_guards": self.python_guards,
            "cpu_seconds": self.cpu_seconds,
            "call_timeout_s": self.call_timeout_s,
            "memory_mb": self.memory_mb,
        }
        self._send(init)
        ready = self._recv(time.monotonic() + START_TIMEOUT_S, "starting the sandbox")
        if isinstance(ready, list):
            raise self._fail(self._error_from(ready))
        self.layers = list(ready["layers"])
        jail = ready.get("jail")
        if jail:
            # the child's root is now this empty directory; removing it leaves nothing to write into
            with contextlib.suppress(OSError):
                os.rmdir(jail)
        reply = self._recv(time.monotonic() + max(MODULE_TIMEOUT_S, self.call_timeout_s), "running module-level code")
        if reply[0] != _OK:
            raise self._fail(self._error_from(reply))

    def close(self) -> None:
        proc = self._proc
        if proc is None:
            return
        for fd in (self._wfd, self._rfd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wfd = self._rfd = -1
        try:
            proc.wait(timeout=0.5)  # end of input: a healthy child exits by itself
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
        if self._stderr is not None:
            self._stderr.join(timeout=1.0)
        self._proc = None

    def __enter__(self) -> RewardSandbox:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    @property
    def output(self) -> str:
        """What the reward function printed (last 64 KiB), and any crash message."""
        return self._stderr.text() if self._stderr is not None else ""

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # -------------------------------------------------------------------------------- calls
    def __call__(self, params: dict[str, Any]) -> float:
        self._ready()
        self._sync_waypoints(params)
        self._send([_CALL, self._strip(params)])
        reply = self._recv(time.monotonic() + self.call_timeout_s, "a reward call")
        self.calls += 1
        if reply[0] != _OK:
            raise self._error(reply)
        return float(reply[1])

    def call_many(self, params_list: Sequence[dict[str, Any]]) -> list[float]:
        """One round trip for many steps. On failure, ``RewardError.index`` names the failing step."""
        self._ready()
        if not params_list:
            return []
        values: list[float] = []
        start = 0
        # params of one batch normally share one waypoints list; split the batch where it changes
        while start < len(params_list):
            self._sync_waypoints(params_list[start])
            wp = params_list[start].get("waypoints")
            end = start + 1
            while end < len(params_list) and params_list[end].get("waypoints") is wp:
                end += 1
            chunk = [self._strip(p) for p in params_list[start:end]]
            self._send([_MANY, chunk])
            reply = self._recv(time.monotonic() + self.call_timeout_s * len(chunk), "a batch of reward calls")
            if reply[0] != _OK:
                error = self._error(reply)
                if error.index is not None:
                    error.index += start
                    self.calls += error.index
                raise error
            values.extend(float(v) for v in reply[1])
            self.calls += len(chunk)
            start = end
        return values

    # ------------------------------------------------------------------------------ internals
    def _ready(self) -> None:
        if self._failed is not None and self._proc is None:
            raise RewardError(self._failed.code, f"sandbox already failed: {self._failed.message}", self._failed.line)
        if self._proc is None:
            self.start()

    @staticmethod
    def _strip(params: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in params.items() if k != "waypoints"}

    def _sync_waypoints(self, params: dict[str, Any]) -> None:
        wp = params.get("waypoints")
        if wp is self._waypoints_obj:
            return
        self._waypoints_obj = wp
        if wp == self._waypoints_sent:
            return
        self._waypoints_sent = wp
        self._send([_WAYPOINTS, wp])

    def _fail(self, error: RewardError) -> RewardError:
        self._failed = error
        self.close()
        return error

    def _error(self, reply: list[Any]) -> RewardError:
        error = self._error_from(reply)
        if error.code not in RECOVERABLE_CODES:
            self._fail(error)
        return error

    @staticmethod
    def _error_from(reply: list[Any]) -> RewardError:
        _, code, message, line, *rest = [*reply, None]
        index = rest[0] if rest else None
        return RewardError(str(code), str(message), line if isinstance(line, int) else None, index)

    def _send(self, message: Any) -> None:
        body = self._packer.pack(message)
        data = _HEADER.pack(len(body)) + body
        try:
            while data:
                data = data[os.write(self._wfd, data) :]
        except OSError:
            raise self._fail(self._death("while sending params")) from None

    def _read(self, n: int, deadline: float, what: str) -> bytes:
        chunks: list[bytes] = []
        while n:
            now = time.monotonic()
            self._check_budget(now)
            remaining = deadline - now
            if remaining <= 0:
                raise self._fail(self._timeout(what))
            wait = min(remaining, BUDGET_POLL_S) if self.cancel is not None or self.deadline is not None else remaining
            if not select.select([self._rfd], [], [], wait)[0]:
                continue
            chunk = os.read(self._rfd, min(n, 1 << 20))
            if not chunk:
                raise self._fail(self._death(f"during {what}"))
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _check_budget(self, now: float) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise self._fail(RewardError("STOPPED", "the job was stopped while the reward function was running"))
        if self.deadline is not None and now >= self.deadline:
            raise self._fail(
                RewardError("JOB_TIME_LIMIT", "the job's time limit ran out while the reward function was running")
            )

    def _recv(self, deadline: float, what: str) -> Any:
        (size,) = _HEADER.unpack(self._read(4, deadline, what))
        if size > MAX_FRAME:
            raise self._fail(RewardError("SANDBOX_CRASHED", f"sandbox sent a malformed reply ({size} bytes)"))
        body = self._read(size, deadline, what)
        try:
            return msgpack.unpackb(body, raw=False, strict_map_key=False)
        except (ValueError, msgpack.ExtraData) as exc:
            raise self._fail(RewardError("SANDBOX_CRASHED", f"sandbox sent a malformed reply: {exc}")) from None

    def _timeout(self, what: str) -> RewardError:
        limit = self.call_timeout_s
        if what == "starting the sandbox":
            return RewardError("TIMEOUT", f"the sandbox did not start within {START_TIMEOUT_S:g} s")
        if what == "running module-level code":
            limit = max(MODULE_TIMEOUT_S, self.call_timeout_s)
            return RewardError("TIMEOUT", f"the reward file's module-level code ran longer than {limit:g} s")
        return RewardError("TIMEOUT", f"reward_function did not return within {limit:g} s (per call); job stopped")

    def _death(self, when: str) -> RewardError:
        proc = self._proc
        assert proc is not None
        try:
            rc = proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        if self._stderr is not None:
            self._stderr.join(timeout=1.0)
        tail = self.output.strip().splitlines()[-1:] if self._stderr is not None else []
        detail = f"; last output: {tail[0][:300]}" if tail else ""
        if rc == -signal.SIGXCPU:
            return RewardError("RESOURCE_LIMIT", f"reward function exceeded its CPU time limit ({self.cpu_seconds} s)")
        if rc == -signal.SIGKILL:
            return RewardError("RESOURCE_LIMIT", f"sandbox was killed {when} (CPU or memory limit){detail}")
        if rc == -signal.SIGXFSZ:
            return RewardError("FORBIDDEN", "reward function tried to write a file")
        if rc is not None and rc < 0:
            name = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
            hint = " (deep recursion or memory exhaustion)" if -rc == signal.SIGSEGV else ""
            return RewardError("SANDBOX_CRASHED", f"sandbox crashed with {name}{hint} {when}{detail}")
        if detail and "MemoryError" in detail:
            return RewardError("RESOURCE_LIMIT", f"reward function ran out of memory (limit {self.memory_mb} MB)")
        return RewardError("SANDBOX_CRASHED", f"sandbox exited with code {rc} {when}{detail}")


def measure_overhead(n: int = 2000, batch: int = 1) -> float:
    """Sandbox cost in µs per step: a trivial reward function on real params (reinvent_base),
    called one step per round trip (``batch=1``) or ``batch`` steps per ``call_many``."""
    from trainer.reward_validate import episode_params, world_config

    steps = [p for _, _, p in episode_params(world_config("reinvent_base"), episodes=1, seed=0, max_steps=200)]
    params = [steps[i % len(steps)] for i in range(n)]
    source = "def reward_function(params):\n    return 1.0\n"
    with RewardSandbox(source) as sandbox:
        sandbox.call_many(params[:batch])  # warm-up: waypoints sent once
        start = time.perf_counter()
        if batch <= 1:
            for p in params:
                sandbox(p)
        else:
            for i in range(0, n, batch):
                sandbox.call_many(params[i : i + batch])
        elapsed = time.perf_counter() - start
    return elapsed / n * 1e6
