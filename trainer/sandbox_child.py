"""The sandbox process: locks itself down, then runs one untrusted reward function on request.

Started by ``trainer.sandbox`` as ``python -I <this file>`` (no project on sys.path, no user site),
so it imports only the standard library, msgpack and the libraries reward files may use. Order:
read the init message, import the allowed libraries (their file reads happen here), compile the
reward file, then lock down (network namespace, empty chroot, uid ``nobody``, no-new-privs,
rlimits, seccomp filter, audit hook), then run the file with restricted builtins and serve calls.

Protocol: frames of 4-byte little-endian length + msgpack, over fds handed over as stdin/stdout.
Parent -> child: init {...}; [CALL, params]; [MANY, [params, ...]]; [WAYPOINTS, list | None].
Child -> parent: [OK, value | [values]]; [ERR, code, message, line, index]; ready/init replies.
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import importlib
import linecache
import math
import os
import resource
import signal
import struct
import sys
import tempfile
import types
from collections.abc import Callable, Iterator
from typing import Any

import msgpack

CALL, MANY, WAYPOINTS = 1, 2, 3
OK, ERR = 0, 1
_HEADER = struct.Struct("<I")
NOBODY = 65534
REWARD_LIMIT = 1e5

# Never refused: the interpreter's own bookkeeping while user code runs.
_REFUSED_EVENT_PREFIXES = (
    "open",
    "os.",
    "socket.",
    "subprocess.",
    "ctypes.",
    "shutil.",
    "import",
    "compile",
    "code.__new__",
    "function.__new__",
    "sys._getframe",
    "sys._current_frames",
    "sys.settrace",
    "sys.setprofile",
    "sys.addaudithook",
    "sys.remote_exec",
    "marshal.",
    "pickle.",
    "builtins.input",
    "builtins.breakpoint",
    "pdb.",
    "glob.",
    "tempfile.",
    "urllib.",
    "http.",
    "ftplib.",
    "smtplib.",
    "poplib.",
    "imaplib.",
    "nntplib.",
    "telnetlib.",
    "webbrowser.",
    "fcntl.",
    "mmap.",
    "resource.",
    "signal.",
    "sqlite3.",
    "gc.",
    "cpython.",
    "_posixsubprocess.",
    "syslog.",
    "msvcrt.",
    "winreg.",
)
_FRAME_ATTRS = frozenset(
    {
        "tb_frame",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "ag_frame",
        "ag_code",
        "f_back",
        "f_code",
        "f_globals",
        "f_locals",
        "f_builtins",
        "__code__",
        "__globals__",
    }
)

_SAFE_BUILTINS = [
    "abs",
    "all",
    "any",
    "ascii",
    "bin",
    "bool",
    "bytearray",
    "bytes",
    "callable",
    "chr",
    "classmethod",
    "complex",
    "dict",
    "dir",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "format",
    "frozenset",
    "hasattr",
    "hash",
    "hex",
    "id",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "object",
    "oct",
    "ord",
    "pow",
    "print",
    "property",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "slice",
    "sorted",
    "staticmethod",
    "str",
    "sum",
    "super",
    "tuple",
    "type",
    "zip",
    "True",
    "False",
    "None",
    "Ellipsis",
    "NotImplemented",
]


class SandboxViolation(PermissionError):
    """Raised into user code when it tries something the sandbox refuses."""


class Guard:
    """Python-level rules (audit hook, import allow-list, module views). The OS layer is the boundary;
    this layer turns attempts into clear FORBIDDEN errors instead of obscure OS errors."""

    def __init__(self, allowed_roots: list[str], forbidden_modules: list[str], forbidden_attrs: list[str]) -> None:
        self.allowed_roots = frozenset(allowed_roots)
        self.forbidden_modules = frozenset(forbidden_modules)
        self.forbidden_attrs = frozenset(forbidden_attrs)
        self.locked = False
        self.violation: str | None = None
        self._in_hook = False
        self._views: dict[str, types.ModuleType] = {}

    @contextlib.contextmanager
    def trusted(self) -> Iterator[None]:
        """The sandbox's own introspection (finding the user's line in a traceback) is not an attempt."""
        previous, self._in_hook = self._in_hook, True
        try:
            yield
        finally:
            self._in_hook = previous

    def refuse(self, message: str) -> SandboxViolation:
        if self.violation is None:
            self.violation = message
        return SandboxViolation(message)

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.locked or self._in_hook:
            return
        self._in_hook = True
        try:
            if event == "object.__getattr__":
                if len(args) > 1 and args[1] in _FRAME_ATTRS:
                    raise self.refuse(f"introspection of {args[1]} is not allowed")
                return
            if event.startswith(_REFUSED_EVENT_PREFIXES):
                raise self.refuse(f"operation {event!r} is not allowed in reward functions")
        finally:
            self._in_hook = False

    def module_error(self, name: str) -> str | None:
        parts = name.split(".")
        if parts[0] not in self.allowed_roots:
            allowed = ", ".join(sorted(self.allowed_roots))
            return f"import of {name!r} is not allowed: reward functions may import only {allowed}"
        if any(p.startswith("_") for p in parts):
            return f"import of private module {name!r} is not allowed"
        for i in range(2, len(parts) + 1):
            if ".".join(parts[:i]) in self.forbidden_modules:
                return f"{'.'.join(parts[:i])!r} reads/writes files or loads native code; not allowed"
        return None

    def view(self, name: str) -> types.ModuleType:
        """A module object exposing only the public, allowed names of the real module ``name``."""
        cached = self._views.get(name)
        if cached is not None:
            return cached
        real = sys.modules[name]
        guard = self

        class ModuleView(types.ModuleType):
            def __getattr__(self, attr: str) -> Any:
                full = f"{name}.{attr}"
                if attr.startswith("_") or attr in guard.forbidden_attrs or full in guard.forbidden_attrs:
                    raise guard.refuse(f"{full!r} is not available in reward functions")
                try:
                    value = getattr(real, attr)
                except AttributeError:
                    value = sys.modules.get(full)
                    if value is None:
                        raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None
                if isinstance(value, types.ModuleType):
                    problem = guard.module_error(value.__name__)
                    if problem is not None or not value.__name__.startswith(name.split(".")[0]):
                        raise guard.refuse(problem or f"{full!r} is not available in reward functions")
                    value = guard.view(value.__name__)
                self.__dict__[attr] = value  # later look-ups are plain dict hits
                return value

        # not the real name, so `from x import y`'s sys.modules fallback cannot return a real module
        view = ModuleView(f"<sandboxed {name}>")
        public = getattr(real, "__all__", None)
        if public is None:
            public = [k for k in dir(real) if not k.startswith("_")]
        view.__dict__["__all__"] = [
            k
            for k in public
            if not k.startswith("_") and k not in self.forbidden_attrs and f"{name}.{k}" not in self.forbidden_attrs
        ]
        self._views[name] = view
        return view

    def importer(
        self,
        name: str,
        globals: Any = None,
        locals: Any = None,
        fromlist: Any = (),
        level: int = 0,
    ) -> types.ModuleType:
        if level:
            raise ImportError("relative imports are not allowed in a reward file")
        problem = self.module_error(name)
        if problem is not None:
            raise self.refuse(problem)
        if name not in sys.modules:
            raise ImportError(
                f"module {name!r} was not loaded before the sandbox started; import it at the top of the reward file"
            )
        return self.view(name if fromlist else name.split(".")[0])

    def builtins(self) -> dict[str, Any]:
        table: dict[str, Any] = {k: getattr(builtins, k) for k in _SAFE_BUILTINS}
        for k, v in vars(builtins).items():
            if isinstance(v, type) and issubclass(v, BaseException):
                table[k] = v
        table["__import__"] = self.importer
        table["__build_class__"] = builtins.__build_class__
        table["__name__"] = "builtins"
        return table


# ------------------------------------------------------------------------------------ lock-down


def _bpf(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k & 0xFFFFFFFF)


_LD, _JEQ, _JSET, _JGE, _RET = 0x20, 0x15, 0x45, 0x35, 0x06
_ALLOW, _ERRNO, _KILL = 0x7FFF0000, 0x00050000, 0x80000000
_EPERM, _ENOSYS = 1, 38
_X86_64 = {
    "deny": [
        41,
        42,
        43,
        49,
        50,
        53,
        288,
        57,
        58,
        59,
        322,
        101,
        200,
        85,
        76,
        82,
        83,
        84,
        86,
        87,
        88,
        90,
        91,
        92,
        93,
        94,
        133,
        161,
        165,
        166,
        155,
        272,
        308,
        264,
        258,
        259,
        260,
        263,
        265,
        266,
        268,
        316,
        319,
        321,
        323,
        298,
        310,
        311,
        312,
        425,
        426,
        427,
        250,
        248,
        249,
        29,
        68,
        64,
        240,
        175,
        313,
        176,
        246,
        169,
        163,
        167,
        168,
        188,
        189,
        190,
        280,
        132,
        235,
        261,
        135,
        172,
        173,
        179,
        303,
        304,
        300,
        440,
        434,
        438,
        424,
        129,
        297,
    ],
    "enosys": [435, 437],  # clone3, openat2: glibc falls back to clone / openat, which are checked
    "clone": 56,
    "kill_self": [62, 234],  # kill, tgkill: only the sandbox itself (abort() uses tgkill)
    "open_flags": [(2, 1), (257, 2)],  # (syscall, index of the flags argument)
}
_WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000  # O_WRONLY O_RDWR O_CREAT O_TRUNC O_APPEND
_CLONE_THREAD = 0x00010000


def seccomp_program(pid: int) -> bytes:
    table = _X86_64
    prog = [_bpf(_LD, 0, 0, 4), _bpf(_JEQ, 1, 0, 0xC000003E), _bpf(_RET, 0, 0, _KILL), _bpf(_LD, 0, 0, 0)]
    prog += [_bpf(_JGE, 0, 1, 0x40000000), _bpf(_RET, 0, 0, _ERRNO | _EPERM)]  # x32 ABI
    for nr in table["deny"]:  # type: ignore[attr-defined]
        prog += [_bpf(_JEQ, 0, 1, nr), _bpf(_RET, 0, 0, _ERRNO | _EPERM)]
    for nr in table["enosys"]:  # type: ignore[attr-defined]
        prog += [_bpf(_JEQ, 0, 1, nr), _bpf(_RET, 0, 0, _ERRNO | _ENOSYS)]
    # Each block below ends in a return, so no syscall number needs reloading after it.
    clone_nr = int(table["clone"])  # type: ignore[call-overload]
    prog += [
        _bpf(_JEQ, 0, 4, clone_nr),
        _bpf(_LD, 0, 0, 16),
        _bpf(_JSET, 1, 0, _CLONE_THREAD),
        _bpf(_RET, 0, 0, _ERRNO | _EPERM),
        _bpf(_RET, 0, 0, _ALLOW),
    ]
    for nr in table["kill_self"]:  # type: ignore[attr-defined]
        prog += [
            _bpf(_JEQ, 0, 4, nr),
            _bpf(_LD, 0, 0, 16),
            _bpf(_JEQ, 1, 0, pid),
            _bpf(_RET, 0, 0, _ERRNO | _EPERM),
            _bpf(_RET, 0, 0, _ALLOW),
        ]
    for nr, arg in table["open_flags"]:  # type: ignore[attr-defined]
        prog += [
            _bpf(_JEQ, 0, 4, nr),
            _bpf(_LD, 0, 0, 16 + 8 * arg),
            _bpf(_JSET, 0, 1, _WRITE_FLAGS),
            _bpf(_RET, 0, 0, _ERRNO | _EPERM),
            _bpf(_RET, 0, 0, _ALLOW),
        ]
    prog.append(_bpf(_RET, 0, 0, _ALLOW))
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def _vm_size_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def lock_down(cpu_seconds: int, memory_mb: int) -> tuple[list[str], str | None]:
    """Apply every OS layer this machine allows. Returns (layers applied, jail dir for the parent to remove)."""
    libc = ctypes.CDLL(None, use_errno=True)
    layers: list[str] = []
    jail: str | None = None
    address_space = int((_vm_size_mb() + memory_mb) * 1024 * 1024)
    parent = os.getppid()
    if os.geteuid() == 0:
        if libc.unshare(0x40000000) == 0:  # CLONE_NEWNET: only a down loopback exists inside
            layers.append("netns")
        jail = tempfile.mkdtemp(prefix="trackside-jail-")
        os.chmod(jail, 0o555)
        os.chroot(jail)
        os.chdir("/")
        layers.append("chroot")
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        layers.append("uid")
    # PR_SET_PDEATHSIG is cleared by a uid change, so it comes after setuid.
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no ptrace, no /proc/<pid>/mem by same-uid processes
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
    layers.append("no_new_privs")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file write fails with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))
    layers.append("rlimits")
    if os.uname().machine == "x86_64":
        program = seccomp_program(os.getpid())
        fprog = _SockFprog(len(program) // 8, program)
        if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
            raise OSError(ctypes.get_errno(), "seccomp filter refused")
        layers.append("seccomp")
    return layers, jail


# ------------------------------------------------------------------------------------- serving


class Channel:
    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd = rfd
        self.wfd = wfd
        self.packer = msgpack.Packer(use_bin_type=True)

    def _read_exact(self, n: int) -> bytes:
        chunks = []
        while n:
            chunk = os.read(self.rfd, n)
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def recv(self) -> Any:
        (size,) = _HEADER.unpack(self._read_exact(4))
        return msgpack.unpackb(self._read_exact(size), raw=False, use_list=True, strict_map_key=False)

    def send(self, message: Any) -> None:
        body = self.packer.pack(message)
        data = _HEADER.pack(len(body)) + body
        while data:
            written = os.write(self.wfd, data)
            data = data[written:]


def _user_line(tb: types.TracebackType | None, filename: str) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= 200 else text[:197] + "..."


class CallTimeout(BaseException):
    """Raised into the reward function when one call outlives its budget (SIGALRM)."""


def _call_timed_out(signum: int, frame: types.FrameType | None) -> None:
    raise CallTimeout


class Runner:
    """Calls the reward function and classifies what went wrong.

    Each call gets ``call_timeout_s`` of wall time (an interval timer), also inside a batch: without
    it a batch of n steps would only be bounded by the parent's n × call_timeout_s. A function that
    swallows the timeout is still ended by the parent's deadlines (trainer/sandbox.py)."""

    def __init__(
        self, fn: Callable[[dict[str, Any]], Any], guard: Guard, filename: str, call_timeout_s: float = 0.0
    ) -> None:
        self.fn = fn
        self.guard = guard
        self.filename = filename
        self.call_timeout_s = call_timeout_s
        self.waypoints: list[tuple[float, float]] | None = None

    def error(self, exc: BaseException) -> list[Any]:
        with self.guard.trusted():
            line = _user_line(exc.__traceback__, self.filename)
        if self.guard.violation is not None:
            return [ERR, "FORBIDDEN", self.guard.violation, line]
        if isinstance(exc, CallTimeout):
            limit = self.call_timeout_s
            return [ERR, "TIMEOUT", f"reward_function did not return within {limit:g} s (per call); job stopped", line]
        if isinstance(exc, MemoryError):
            return [ERR, "RESOURCE_LIMIT", "reward function ran out of memory (MemoryError)", line]
        if isinstance(exc, ImportError):
            return [ERR, "IMPORT_ERROR", f"{type(exc).__name__}: {exc}", line]
        text = str(exc)
        detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        return [ERR, "RUNTIME_ERROR", f"reward function raised {detail}", line]

    def call(self, params: dict[str, Any]) -> float | list[Any]:
        if self.waypoints is not None:
            params["waypoints"] = list(self.waypoints)  # a fresh list: mutations do not leak into later steps
        try:
            if self.call_timeout_s > 0:
                signal.setitimer(signal.ITIMER_REAL, self.call_timeout_s)
            try:
                value = self.fn(params)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except BaseException as exc:  # user code may raise anything, SystemExit included
            return self.error(exc)
        try:
            reward = float(value)
        except BaseException as exc:
            if self.guard.violation is None and isinstance(exc, TypeError | ValueError | OverflowError):
                return [
                    ERR,
                    "BAD_RETURN",
                    f"reward_function returned {_short_repr(value)}, which float() rejects",
                    None,
                ]
            return self.error(exc)
        if self.guard.violation is not None:
            return [ERR, "FORBIDDEN", self.guard.violation, None]
        if not math.isfinite(reward) or abs(reward) > REWARD_LIMIT:
            message = f"reward_function returned {reward!r}; it must be finite and within [-1e5, 1e5]"
            return [ERR, "BAD_RETURN", message, None]
        return reward


def _preload(modules: list[list[Any]]) -> list[Any] | None:
    for name, line in modules:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            # `from numpy import pi` names numpy.pi, which is not a module: fine when the parent is
            parent_name = name.rpartition(".")[0]
            if parent_name and parent_name in sys.modules:
                continue
            return [ERR, "IMPORT_ERROR", f"cannot import {name!r}: {exc}", line]
        except Exception as exc:
            return [ERR, "IMPORT_ERROR", f"importing {name!r} failed: {type(exc).__name__}: {exc}", line]
    return None


def main() -> None:
    # The protocol keeps private copies of the pipes; fd 1 becomes stderr so print() cannot corrupt it.
    channel = Channel(os.dup(0), os.dup(1))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    init = channel.recv()
    filename: str = init["filename"]
    source: str = init["source"]

    import random  # noqa: F401 (pre-loaded: file reads must happen before lock-down)

    import numpy  # noqa: F401
    import scipy  # noqa: F401
    import shapely
    import shapely.geometry  # noqa: F401

    failed = _preload(init["modules"])
    if failed is not None:
        channel.send(failed)
        return
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        channel.send([ERR, "SYNTAX_ERROR", str(exc.msg), exc.lineno])
        return
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)

    guard = Guard(init["allowed_roots"], init["forbidden_modules"], init["forbidden_attrs"])
    signal.signal(signal.SIGALRM, _call_timed_out)  # before lock-down and the audit hook
    python_guards = bool(init["python_guards"])
    layers, jail = lock_down(int(init["cpu_seconds"]), int(init["memory_mb"]))
    if python_guards:
        sys.addaudithook(guard.audit)
        layers.append("audit")
        namespace: dict[str, Any] = {"__builtins__": guard.builtins(), "__name__": "reward_function"}
    else:
        namespace = {"__builtins__": builtins, "__name__": "reward_function"}
    channel.send({"layers": layers, "jail": jail})

    guard.locked = True
    try:
        exec(code, namespace)
        fn = namespace.get("reward_function")
        if not callable(fn):
            raise TypeError("no callable reward_function(params) defined at module level")
    except BaseException as exc:
        runner = Runner(lambda p: None, guard, filename)
        reply = runner.error(exc)
        if isinstance(exc, TypeError) and "reward_function" in str(exc):
            reply = [ERR, "BAD_SIGNATURE", str(exc), None]
        channel.send(reply)
        return
    runner = Runner(fn, guard, filename, float(init.get("call_timeout_s", 0.0)))
    channel.send([OK, None])
    serve(channel, runner)


def serve(channel: Channel, runner: Runner) -> None:
    while True:
        try:
            message = channel.recv()
        except EOFError:
            return
        kind = message[0]
        if kind == CALL:
            result = runner.call(message[1])
            channel.send([OK, result] if isinstance(result, float) else [*result, None])
        elif kind == MANY:
            values: list[float] = []
            for i, params in enumerate(message[1]):
                result = runner.call(params)
                if not isinstance(result, float):
                    channel.send([*result, i])
                    break
                values.append(result)
            else:
                channel.send([OK, values])
        elif kind == WAYPOINTS:
            raw = message[1]
            runner.waypoints = None if raw is None else [tuple(p) for p in raw]
        if runner.guard.violation is not None:
            return  # a refused operation ends the job


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        main()
