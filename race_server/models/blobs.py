"""Content-addressed files under ``<data_dir>/blobs``: a file's name is its SHA-256.

The interface is deliberately narrow (put a file, open / locate by digest, delete, list) so an
S3-compatible backend can replace it later. Writes go through a temporary name and a rename, so a
blob is either whole or absent.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1024 * 1024


def file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / ".tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        if not _DIGEST.match(digest):
            raise ValueError(f"not a SHA-256 digest: {digest!r}")
        return self.root / digest[:2] / digest[2:]

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put_file(self, source: Path, *, move: bool = False) -> tuple[str, bool]:
        """Store a copy of ``source`` (or move it, when it lies on the same disk and may go).
        Returns the digest and whether the blob is new."""
        digest = file_digest(source)
        target = self.path(digest)
        if target.is_file():
            return digest, False
        target.parent.mkdir(exist_ok=True)
        temp = self.tmp / uuid.uuid4().hex
        if move:
            os.replace(source, temp)
        else:
            with source.open("rb") as src, temp.open("wb") as dst:
                while chunk := src.read(CHUNK):
                    dst.write(chunk)
        os.chmod(temp, 0o444)
        os.replace(temp, target)
        return digest, True

    def open(self, digest: str) -> BinaryIO:
        return self.path(digest).open("rb")

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def digests(self) -> Iterator[str]:
        for sub in self.root.iterdir():
            if len(sub.name) == 2 and sub.is_dir():
                for blob in sub.iterdir():
                    yield sub.name + blob.name

    def collect_garbage(self, referenced: set[str]) -> int:
        """Remove blobs nothing refers to and half-written temporaries; returns how many went."""
        removed = 0
        for temp in self.tmp.iterdir():
            temp.unlink(missing_ok=True)
            removed += 1
        for digest in list(self.digests()):
            if digest not in referenced:
                self.delete(digest)
                removed += 1
        return removed
