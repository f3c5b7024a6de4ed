"""Hostile uploads: every case stops with a clear code and writes nothing outside the staging dir."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from race_server.models.archive import ArchiveError, ArchiveLimits, extract_archive
from race_server.models.validation import validate_folder
from tests.models.builders import file_entry, tar_bytes, tar_folder, write_trackside_folder

SMALL = ArchiveLimits(total_bytes=1_000_000, files=50, max_ratio=50.0, ratio_grace=100_000)


class Box:
    """A sandbox: ``dest`` is where extraction may write; anything else appearing is a failure."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dest = root / "box" / "dest"
        self.dest.parent.mkdir(parents=True)
        (root / "box" / "outside.txt").write_text("untouched")

    def run(self, data: bytes, limits: ArchiveLimits = SMALL, suffix: str = "upload") -> None:
        upload = self.root / suffix
        upload.write_bytes(data)
        extract_archive(upload, self.dest, limits)

    def assert_contained(self) -> None:
        outside = sorted(p.name for p in self.dest.parent.iterdir())
        assert outside in (["dest", "outside.txt"], ["outside.txt"])
        assert (self.dest.parent / "outside.txt").read_text() == "untouched"
        assert not Path("/tmp/trackside-evil").exists()
        if self.dest.exists():
            for path in self.dest.rglob("*"):
                assert not path.is_symlink()
                assert path.resolve().is_relative_to(self.dest.resolve())


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


def refused(box: Box, data: bytes, code: str, limits: ArchiveLimits = SMALL) -> ArchiveError:
    with pytest.raises(ArchiveError) as caught:
        box.run(data, limits)
    assert caught.value.problem.code == code, caught.value.problem
    box.assert_contained()
    return caught.value


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def zip_bytes(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


TAR_CASES: dict[str, tuple[list[tuple[tarfile.TarInfo, bytes | None]], str]] = {
    "dotdot": ([file_entry("../evil.txt", b"x")], "UNSAFE_ARCHIVE_ENTRY"),
    "dotdot-nested": ([file_entry("model/../../evil.txt", b"x")], "UNSAFE_ARCHIVE_ENTRY"),
    "absolute": ([file_entry("/tmp/trackside-evil", b"x")], "UNSAFE_ARCHIVE_ENTRY"),
    "windows-drive": ([file_entry("C:/evil.txt", b"x")], "UNSAFE_ARCHIVE_ENTRY"),
    "backslash": ([file_entry("..\\evil.txt", b"x")], "UNSAFE_ARCHIVE_ENTRY"),
    "symlink": ([special("model", tarfile.SYMTYPE, "/tmp")], "UNSAFE_ARCHIVE_ENTRY"),
    "symlink-then-write-through": (
        [special("link", tarfile.SYMTYPE, "/tmp"), file_entry("link/trackside-evil", b"x")],
        "UNSAFE_ARCHIVE_ENTRY",
    ),
    "hardlink": ([special("passwd", tarfile.LNKTYPE, "/etc/passwd")], "UNSAFE_ARCHIVE_ENTRY"),
    "char-device": ([special("null", tarfile.CHRTYPE)], "UNSAFE_ARCHIVE_ENTRY"),
    "fifo": ([special("pipe", tarfile.FIFOTYPE)], "UNSAFE_ARCHIVE_ENTRY"),
    "duplicate": (
        [file_entry("reward_function.py", b"a"), file_entry("reward_function.py", b"b")],
        "UNSAFE_ARCHIVE_ENTRY",
    ),
    "duplicate-after-normalising": (
        [file_entry("model/x", b"a"), file_entry("./model//x", b"b")],
        "UNSAFE_ARCHIVE_ENTRY",
    ),
    "file-then-folder-clash": ([file_entry("model", b"a"), file_entry("model/x", b"b")], "UNSAFE_ARCHIVE_ENTRY"),
    "nul-in-name": ([file_entry("a\x01b", b"x")], "UNSAFE_ARCHIVE_ENTRY"),
    "very-deep-path": ([file_entry("/".join(["d"] * 40) + "/f", b"x")], "UNSAFE_ARCHIVE_ENTRY"),
    "too-many-files": ([file_entry(f"f{i}", b"x") for i in range(51)], "ARCHIVE_LIMIT_EXCEEDED"),
    "declared-size-over-limit": ([file_entry("big", b"x" * 1_000_001)], "MODEL_TAR_FILE_SIZE_LIMIT_EXCEEDED"),
}


@pytest.mark.parametrize("case", sorted(TAR_CASES))
def test_hostile_tar_entries(box: Box, case: str) -> None:
    entries, code = TAR_CASES[case]
    refused(box, tar_bytes(entries), code)


def test_non_utf8_tar_name(box: Box) -> None:
    info = tarfile.TarInfo("caf\udce9.txt")  # the byte 0xe9 as tarfile surfaces it
    info.size = 1
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape"
    ) as archive:
        archive.addfile(info, io.BytesIO(b"x"))
    refused(box, buffer.getvalue(), "UNSAFE_ARCHIVE_ENTRY")


def test_gzip_bomb_is_stopped_by_the_ratio(box: Box) -> None:
    limits = ArchiveLimits(total_bytes=50_000_000, files=50, max_ratio=50.0, ratio_grace=1_000_000)
    data = tar_bytes([file_entry("model/zeros.ckpt.pt", bytes(20_000_000))])
    assert len(data) < 100_000
    error = refused(box, data, "ARCHIVE_LIMIT_EXCEEDED", limits)
    assert "bomb" in error.problem.message


def test_expansion_past_the_folder_limit(box: Box) -> None:
    data = tar_bytes([file_entry(f"part{i}", bytes(300_000)) for i in range(4)])
    refused(box, data, "MODEL_TAR_FILE_SIZE_LIMIT_EXCEEDED", ArchiveLimits(total_bytes=1_000_000, max_ratio=1e9))


def test_truncated_tar_gz(box: Box, tmp_path: Path) -> None:
    data = tar_folder(write_trackside_folder(tmp_path / "m"), tmp_path / "m.tar.gz").read_bytes()
    refused(box, data[: len(data) // 2], "INVALID_ARCHIVE", ArchiveLimits())


def test_header_that_promises_more_than_the_archive_holds(box: Box) -> None:
    raw = tar_bytes([file_entry("reward_function.py", b"x" * 5000)], mode="w")
    refused(box, gzip.compress(raw[:1024]), "INVALID_ARCHIVE")


def test_not_an_archive(box: Box) -> None:
    refused(box, b"just some bytes, not an archive" * 20, "INVALID_ARCHIVE")


ZIP_CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "zip-dotdot": (lambda: zip_bytes([("../evil.txt", b"x")]), "UNSAFE_ARCHIVE_ENTRY"),
    "zip-absolute": (lambda: zip_bytes([("/tmp/trackside-evil", b"x")]), "UNSAFE_ARCHIVE_ENTRY"),
    "zip-duplicate": (lambda: _zip_duplicate(), "UNSAFE_ARCHIVE_ENTRY"),
    "zip-symlink": (lambda: _zip_symlink(), "UNSAFE_ARCHIVE_ENTRY"),
    "zip-non-utf8-name": (lambda: _zip_cp437_name(), "UNSAFE_ARCHIVE_ENTRY"),
    "zip-bomb": (lambda: zip_bytes([("model/zeros", bytes(5_000_000))]), "ARCHIVE_LIMIT_EXCEEDED"),
    "zip-truncated": (lambda: _zip_truncated(), "INVALID_ARCHIVE"),
}


def _zip_duplicate() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("model/a", b"1")
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("model/a", b"2")
    return buffer.getvalue()


def _zip_truncated() -> bytes:
    data = zip_bytes([("model/1_Step-1.ckpt.pt", np.random.default_rng(1).bytes(50_000))])
    return data[: len(data) // 2]


def _zip_symlink() -> bytes:
    info = zipfile.ZipInfo("model")
    info.external_attr = 0o120777 << 16
    return zip_bytes([(info, b"/tmp")])


def _zip_cp437_name() -> bytes:
    data = zip_bytes([("cafe.txt", b"x")])
    # rename in both headers to a Latin-1 byte without the UTF-8 flag
    return data.replace(b"cafe.txt", b"caf\xe9.txt")


@pytest.mark.parametrize("case", sorted(ZIP_CASES))
def test_hostile_zip_entries(box: Box, case: str) -> None:
    make, code = ZIP_CASES[case]
    refused(box, make(), code)


def test_yaml_python_tags_are_refused_and_never_run(tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    marker = tmp_path / "ran"
    (folder / "training_params.yaml").write_text(f"x: !!python/object/apply:os.system ['touch {marker}']\n")
    report = validate_folder(folder)
    assert [p.code for p in report.errors] == ["INVALID_YAML"]
    assert not marker.exists()


def test_yaml_alias_bomb_is_refused(tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    (folder / "training_params.yaml").write_text("\n".join(lines) + "\n")
    report = validate_folder(folder)
    assert [p.code for p in report.errors] == ["INVALID_YAML"]


def test_deeply_nested_json_is_refused_without_recursion(tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    (folder / "model_metadata.json").write_text("[" * 200_000 + "]" * 200_000)
    report = validate_folder(folder)
    assert [p.code for p in report.errors] == ["INVALID_JSON"]
    assert "nested" in report.errors[0].message


def test_finder_junk_is_dropped_not_stored(box: Box, tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    data = tar_bytes(
        [file_entry(f"m/{p.relative_to(folder).as_posix()}", p.read_bytes()) for p in folder.rglob("*") if p.is_file()]
        + [file_entry("__MACOSX/m/._model_metadata.json", b"junk"), file_entry("m/.DS_Store", b"junk")]
    )
    box.run(data, ArchiveLimits())
    assert not any(p.name in (".DS_Store", "__MACOSX") for p in box.dest.rglob("*"))
    assert validate_folder(box.dest).ok


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        op = int(rng.integers(0, 4))
        pos = int(rng.integers(0, max(len(buf), 1)))
        if op == 0 and buf:
            buf[pos] = int(rng.integers(0, 256))
        elif op == 1:
            del buf[pos:]
        elif op == 2:
            buf[pos:pos] = rng.bytes(int(rng.integers(1, 64)))
        else:
            del buf[pos : pos + int(rng.integers(1, 512))]
    return bytes(buf)


def hostile_base(folder: Path) -> bytes:
    """An uncompressed tar mixing a real model with a traversal and a link: mutations of it reach
    the entry-level defences, not only the gzip checksum."""
    entries = [
        file_entry(p.relative_to(folder).as_posix(), p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()
    ]
    return tar_bytes([*entries, file_entry("model/..x/../../evil", b"1"), special("l", tarfile.SYMTYPE, "/")], "w")


def small_folder(root: Path) -> Path:
    """A model folder with a tiny stand-in checkpoint: extraction does not read weights."""
    folder = write_trackside_folder(root)
    (folder / "model" / "3_Step-300.ckpt.pt").write_bytes(np.random.default_rng(3).bytes(3000))
    return folder


def test_fuzzed_archives_never_escape_or_crash(tmp_path: Path) -> None:
    rng = np.random.default_rng(20240611)
    folder = small_folder(tmp_path / "m")
    bases = [
        tar_folder(folder, tmp_path / "m.tar.gz").read_bytes(),
        hostile_base(folder),
        zip_bytes([(p.relative_to(folder).as_posix(), p.read_bytes()) for p in folder.rglob("*") if p.is_file()]),
    ]
    outcomes = {"ok": 0, "refused": 0}
    for i in range(240):
        box = Box(tmp_path / f"fuzz{i}")
        try:
            box.run(mutate(bases[i % len(bases)], rng), ArchiveLimits(total_bytes=20_000_000))
            validate_folder(box.dest)
            outcomes["ok"] += 1
        except ArchiveError:
            outcomes["refused"] += 1
        box.assert_contained()
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == 240


def test_valid_archive_roundtrip_extracts_everything(box: Box, tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    box.run(tar_folder(folder, tmp_path / "m.tar.gz", arcroot="my-model/").read_bytes(), ArchiveLimits())
    report = validate_folder(box.dest)
    assert report.ok and json.loads((report.root / "model_metadata.json").read_text())["version"] == "5"
