"""A PostgreSQL server kept in the data directory, so `make run` needs nothing installed.

The server binaries come from the `pgserver` wheel; this module owns their life cycle: initdb on
first use, start, and a clean stop with the Trackside process. A server killed with -9 leaves a
postmaster running (or a stale pid file); the next start finds and stops that orphan first, after
taking the data dir's lock so it never stops a postmaster another live Trackside is using.

Only the server's own OS user gets in: connections come over a Unix socket in a 0700 folder (no
TCP), authenticated by peer credentials mapped to the ``postgres`` role (pg_hba.conf and
pg_ident.conf are rewritten at every start, so clusters made before this rule get it too). As root
the cluster runs as ``trackside-pg`` with that account's group and no other: a superuser's
``COPY … FROM PROGRAM`` then runs without root's groups.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

log = logging.getLogger("trackside.db.embedded")


class EmbeddedPostgresError(RuntimeError):
    pass


def _bin_path() -> Path:
    # Importing the pgserver package itself starts its own server machinery and warns about
    # XDG_RUNTIME_DIR; only its binaries are wanted.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the pgserver package is not installed: pip install pgserver")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


# Postgres refuses to run as root; as root we run it as this unprivileged account.
SERVICE_USER = "trackside-pg"
SOCKET_NAME = ".s.PGSQL.5432"
MAX_SOCKET_PATH = 100


def _run_as() -> str | None:
    return SERVICE_USER if os.geteuid() == 0 else None


def _ensure_service_user() -> None:
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            check=True,
            capture_output=True,
        )


def _server_os_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _open_traversal(path: Path) -> None:
    """The service user must be able to reach the data dir through every parent folder."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.pgdata = data_dir / "postgres"
        self.log_file = data_dir / "postgres.log"
        self.socket_dir = self._choose_socket_dir()
        self._lock_handle: IO[str] | None = None

    def _choose_socket_dir(self) -> Path:
        preferred = self.data_dir / "run"
        if len(str(preferred / SOCKET_NAME)) <= MAX_SOCKET_PATH:
            return preferred
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"trackside-pg-{digest}"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.socket_dir}"

    def _pg(self, program: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(_bin_path() / program), *args]
        user = _run_as()
        if user is None:
            return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd="/")
        # user= alone keeps root's supplementary groups (gid 0 among them): drop them all.
        entry = pwd.getpwnam(user)
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            user=entry.pw_uid,
            group=entry.pw_gid,
            extra_groups=[],
        )

    def _acquire_lock(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.data_dir / "trackside.lock", "a+")  # noqa: SIM115 - held for the server's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise EmbeddedPostgresError(
                f"another Trackside server is using the data directory {self.data_dir}; "
                "stop it first or set TRACKSIDE_DATA_DIR to another folder"
            ) from None
        self._lock_handle = handle

    def _release_lock(self) -> None:
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def _prepare_filesystem(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        user = _run_as()
        if user is not None:
            _ensure_service_user()
            _open_traversal(self.data_dir)
            _open_traversal(_bin_path())
            _chown_tree(self.pgdata, user)
            _chown_tree(self.socket_dir, user)
            self.log_file.touch()
            entry = pwd.getpwnam(user)
            os.chown(self.log_file, entry.pw_uid, entry.pw_gid)
        self.pgdata.chmod(0o700)
        self.socket_dir.chmod(0o700)

    def _initdb_if_needed(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        log.info("initialising embedded PostgreSQL in %s", self.pgdata)
        result = self._pg("initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=reject", "--encoding=UTF8")
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed in {self.pgdata}: {result.stderr.strip()}")

    def _write_auth_rules(self) -> None:
        """Peer authentication for the server's OS user alone, as the ``postgres`` role."""
        hba = (
            "# Written by Trackside at every start (race_server/db/embedded.py): edits are replaced.\n"
            "local all postgres peer map=trackside\n"
            "local all all reject\n"
            "host all all 0.0.0.0/0 reject\n"
            "host all all ::/0 reject\n"
        )
        ident = f"# Written by Trackside at every start.\ntrackside {_server_os_user()} postgres\n"
        for name, text in (("pg_hba.conf", hba), ("pg_ident.conf", ident)):
            target = self.pgdata / name
            target.write_text(text)
            target.chmod(0o600)
            user = _run_as()
            if user is not None:
                entry = pwd.getpwnam(user)
                os.chown(target, entry.pw_uid, entry.pw_gid)

    def _orphan_pid(self) -> int | None:
        """The pid of a postmaster still running on our data dir from a killed server, if any."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            first_line = pid_file.read_text().splitlines()[0]
            pid = int(first_line.strip())
        except (FileNotFoundError, IndexError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        if not cmdline or not cmdline[0].endswith(b"postgres"):
            return None
        return pid

    def _stop_orphan(self, pid: int) -> None:
        log.warning("stopping orphaned PostgreSQL (pid %d) left by a previous server", pid)
        os.kill(pid, signal.SIGINT)  # fast shutdown: roll back, checkpoint, exit
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists() or self._is_zombie(pid):
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    @staticmethod
    def _is_zombie(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
        except (OSError, IndexError):
            return True

    def attach(self) -> str | None:
        """The DSN of the postmaster a running Trackside server owns, for CLI commands run beside it."""
        if self._orphan_pid() is None:
            return None
        return self.dsn

    def start(self) -> str:
        self._acquire_lock()
        try:
            self._prepare_filesystem()
            self._initdb_if_needed()
            self._write_auth_rules()
            orphan = self._orphan_pid()
            if orphan is not None:
                self._stop_orphan(orphan)
            options = f"-h '' -k {self.socket_dir} -c max_connections=200"
            result = self._pg(
                "pg_ctl", "-D", str(self.pgdata), "-l", str(self.log_file), "-w", "-t", "60",
                "-o", options, "start",
            )  # fmt: skip
            if result.returncode != 0:
                tail = self._log_tail()
                raise EmbeddedPostgresError(
                    f"embedded PostgreSQL did not start: {result.stderr.strip() or result.stdout.strip()}\n{tail}"
                )
        except BaseException:
            self._release_lock()
            raise
        log.info("embedded PostgreSQL running in %s", self.pgdata)
        return self.dsn

    def stop(self) -> None:
        try:
            if (self.pgdata / "postmaster.pid").exists():
                result = self._pg("pg_ctl", "-D", str(self.pgdata), "-w", "-m", "fast", "stop")
                if result.returncode != 0:
                    log.error("pg_ctl stop failed: %s", result.stderr.strip())
                else:
                    log.info("embedded PostgreSQL stopped")
        finally:
            self._release_lock()

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text().splitlines()[-lines:])
        except OSError:
            return ""


def binaries_available() -> bool:
    return shutil.which("pg_ctl", path=str(_bin_path())) is not None
