"""Unpack untrusted uploads (.tar.gz, .zip, multipart folder uploads) into a fresh staging folder.

Every entry goes through one writer that refuses what could escape the folder or exhaust the
disk: absolute paths, ``..``, links, devices, duplicate names, non-UTF-8 names, sizes over the
folder limits, compression ratios only bombs reach, and archives that end early. The first hostile
entry stops the unpacking; the caller throws the staging folder away.
"""

from __future__ import annotations

import os
import re
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from race_server.models.folder import MAX_FILES, MAX_FOLDER_BYTES, Problem, is_junk

CHUNK = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ArchiveLimits:
    total_bytes: int = MAX_FOLDER_BYTES
    files: int = MAX_FILES
    max_ratio: float = 200.0  # uncompressed / compressed, checked once past ratio_grace bytes
    ratio_grace: int = 16 * 1024 * 1024
    path_bytes: int = 1024
    depth: int = 32


class ArchiveError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _unsafe(detail: str, entry: str | None = None) -> ArchiveError:
    return ArchiveError(Problem("UNSAFE_ARCHIVE_ENTRY", detail, entry))


def _limit(detail: str, entry: str | None = None, code: str = "ARCHIVE_LIMIT_EXCEEDED") -> ArchiveError:
    return ArchiveError(Problem(code, detail, entry))


_FOLDER_ITSELF = re.compile(r"^\.(?:/+\.?)*/*$")


def safe_relpath(name: str, limits: ArchiveLimits = ArchiveLimits()) -> str:
    """The entry's path relative to the model folder, or ArchiveError when it could escape."""
    shown = name.encode("utf-8", "backslashreplace").decode("utf-8")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise _unsafe(f"entry name {shown!r} is not valid UTF-8", shown) from None
    if "\x00" in name or any(ord(c) < 32 for c in name):
        raise _unsafe(f"entry name {shown!r} holds control characters", shown)
    if "\\" in name:
        raise _unsafe(f"entry name {shown!r} uses backslashes; archives use '/'", shown)
    if name.startswith("/") or _DRIVE.match(name):
        raise _unsafe(f"entry {shown!r} is an absolute path", shown)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise _unsafe(f"entry {shown!r} climbs out of the folder with '..'", shown)
    if not parts:
        raise _unsafe(f"entry name {shown!r} is empty", shown)
    rel = "/".join(parts)
    if len(rel.encode()) > limits.path_bytes or len(parts) > limits.depth or any(len(p.encode()) > 255 for p in parts):
        raise _unsafe(f"entry path {shown[:80]!r}… is too long or too deep", shown[:200])
    return rel


class Staging:
    """Writes entries under ``root`` and nowhere else; counts bytes and files against the limits."""

    def __init__(self, root: Path, limits: ArchiveLimits = ArchiveLimits()) -> None:
        self.root = root
        self.limits = limits
        self.total = 0
        self.names: set[str] = set()
        root.mkdir(parents=True, exist_ok=False)

    def _parent(self, rel: str) -> Path:
        current = self.root
        for part in rel.split("/")[:-1]:
            current = current / part
            if part in ("..", "") or current.is_symlink():
                raise _unsafe(f"{rel} passes through a link", rel)
            try:
                current.mkdir(exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise _unsafe(f"{rel} needs {part} to be a folder, but it is a file", rel) from None
            if not stat.S_ISDIR(current.lstat().st_mode):
                raise _unsafe(f"{rel} passes through something that is not a folder", rel)
        return current

    def add_dir(self, name: str) -> None:
        if _FOLDER_ITSELF.match(name):
            return  # "." or "./": `tar -czf m.tar.gz -C folder .` names the folder itself first
        rel = safe_relpath(name, self.limits)
        if is_junk(rel):
            return
        self._parent(rel + "/x")

    def add_file(self, name: str, chunks: Iterator[bytes], declared: int | None = None) -> str | None:
        """Write one file; returns its relative path (None for Finder junk, which is dropped)."""
        sink = self.open_file(name, declared)
        try:
            for chunk in chunks:
                sink.write(chunk)
        except BaseException:
            sink.abort()
            raise
        return sink.close()

    def open_file(self, name: str, declared: int | None = None) -> FileSink:
        rel = safe_relpath(name, self.limits)
        if rel in self.names:
            raise _unsafe(f"{rel} appears twice in the upload", rel)
        self.names.add(rel)
        if len(self.names) > self.limits.files:
            raise _limit(f"more than {self.limits.files} files", rel)
        if declared is not None and self.total + declared > self.limits.total_bytes:
            raise _limit(
                f"{rel} would take the folder past {self.limits.total_bytes} bytes (1 GB)",
                rel,
                "MODEL_TAR_FILE_SIZE_LIMIT_EXCEEDED",
            )
        if is_junk(rel):
            return FileSink(self, rel, None, declared)
        parent = self._parent(rel)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(parent / rel.rsplit("/", 1)[-1], flags, 0o600)
        except (FileExistsError, IsADirectoryError):
            raise _unsafe(f"{rel} clashes with another entry", rel) from None
        return FileSink(self, rel, os.fdopen(fd, "wb"), declared)


class FileSink:
    """One entry being written; counts every byte against the entry's header and the folder."""

    def __init__(self, staging: Staging, rel: str, handle: IO[bytes] | None, declared: int | None) -> None:
        self.staging = staging
        self.rel = rel
        self.handle = handle
        self.declared = declared
        self.written = 0

    def write(self, chunk: bytes) -> None:
        limits = self.staging.limits
        self.written += len(chunk)
        if self.declared is not None and self.written > self.declared:
            self.abort()
            raise _unsafe(f"{self.rel} holds more bytes than its header declares", self.rel)
        if self.handle is None:
            return
        self.staging.total += len(chunk)
        if self.staging.total > limits.total_bytes:
            self.abort()
            raise _limit(
                f"the upload expands past {limits.total_bytes} bytes (1 GB)",
                self.rel,
                "MODEL_TAR_FILE_SIZE_LIMIT_EXCEEDED",
            )
        self.handle.write(chunk)

    def abort(self) -> None:
        if self.handle is not None:
            self.handle.close()

    def close(self) -> str | None:
        if self.handle is not None:
            self.handle.close()
        if self.declared is not None and self.written != self.declared:
            raise ArchiveError(Problem("INVALID_ARCHIVE", f"{self.rel} ends early: the archive is truncated", self.rel))
        return self.rel if self.handle is not None else None


class _CountingReader:
    """Counts compressed bytes read, so the expansion ratio can be watched while streaming."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data


def _chunks(handle: IO[bytes], staging: Staging, source: _CountingReader | None, ratio_of: int = 0) -> Iterator[bytes]:
    while True:
        chunk = handle.read(CHUNK)
        if not chunk:
            return
        yield chunk
        compressed = source.count if source is not None else ratio_of
        if staging.total > staging.limits.ratio_grace and staging.total > staging.limits.max_ratio * max(compressed, 1):
            raise _limit(f"the upload expands more than {staging.limits.max_ratio:.0f} times: an archive bomb", None)


def sniff(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(262)
    if head[:2] == b"\x1f\x8b":
        return "tar.gz"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    raise ArchiveError(Problem("INVALID_ARCHIVE", "the upload is neither a .tar.gz nor a .zip archive"))


def _extract_tar(path: Path, staging: Staging) -> None:
    with path.open("rb") as raw:
        counter = _CountingReader(raw)
        try:
            with tarfile.open(fileobj=counter, mode="r|*") as archive:  # type: ignore[call-overload]
                for member in archive:
                    name = member.name
                    if member.isdir():
                        staging.add_dir(name)
                        continue
                    if member.issym() or member.islnk():
                        raise _unsafe(f"{name} is a link to {member.linkname!r}; links are not allowed", name)
                    if not member.isreg() or member.issparse():
                        raise _unsafe(f"{name} is not a regular file (device, fifo or sparse entry)", name)
                    handle = archive.extractfile(member)
                    assert handle is not None
                    staging.add_file(name, _chunks(handle, staging, counter), member.size)
        except ArchiveError:
            raise
        except Exception as error:  # tarfile raises assorted types (even TypeError) on damaged bytes
            raise ArchiveError(Problem("INVALID_ARCHIVE", f"the archive cannot be read to its end: {error}")) from None


def _extract_zip(path: Path, staging: Staging) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except Exception as error:
        raise ArchiveError(Problem("INVALID_ARCHIVE", f"the zip archive cannot be read: {error}")) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > staging.limits.files:
            raise _limit(f"more than {staging.limits.files} entries")
        for info in infos:
            name = info.filename
            if not info.flag_bits & 0x800 and any(ord(c) > 127 for c in name):
                raise _unsafe(f"entry name {name!r} is not UTF-8 (the zip does not flag it as such)", name)
            if info.flag_bits & 0x1:
                raise _unsafe(f"{name} is encrypted", name)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise _unsafe(f"{name} is a symbolic link; links are not allowed", name)
            if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise _unsafe(f"{name} is not a regular file", name)
            if info.is_dir():
                staging.add_dir(name)
                continue
            if info.file_size > staging.limits.ratio_grace and info.file_size > staging.limits.max_ratio * max(
                info.compress_size, 1
            ):
                raise _limit(f"{name} expands more than {staging.limits.max_ratio:.0f} times: an archive bomb", name)
            try:
                with archive.open(info) as handle:
                    staging.add_file(
                        name, _chunks(handle, staging, None, info.compress_size + staging.total), info.file_size
                    )
            except ArchiveError:
                raise
            except Exception as error:  # zipfile, like tarfile, raises assorted types on damaged bytes
                raise ArchiveError(Problem("INVALID_ARCHIVE", f"{name} cannot be read: {error}", name)) from None


def extract_archive(path: Path, dest: Path, limits: ArchiveLimits = ArchiveLimits()) -> Staging:
    """Unpack a .tar.gz / .tar / .zip at ``path`` into the new folder ``dest``."""
    kind = sniff(path)
    staging = Staging(dest, limits)
    if kind == "zip":
        _extract_zip(path, staging)
    else:
        _extract_tar(path, staging)
    return staging
