"""A browser folder upload (multipart/form-data, one part per file, the filename being the file's
path inside the folder), parsed from a spooled body straight into a staging folder.

Parts go through the same ``Staging`` writer as archive entries, so the same defences hold; small
text fields (name, description) are capped.
"""

from __future__ import annotations

from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from race_server.models.archive import CHUNK, ArchiveError, ArchiveLimits, FileSink, Staging
from race_server.models.folder import Problem

MAX_FIELD_BYTES = 4096
MAX_HEADER_BYTES = 8192


def boundary_of(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ArchiveError(Problem("INVALID_ARCHIVE", "expected multipart/form-data with a boundary"))
    return boundary


class _FormState:
    def __init__(self, staging: Staging) -> None:
        self.staging = staging
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.header_bytes = 0
        self.sink: FileSink | None = None
        self.field_name: str | None = None
        self.field_value = bytearray()
        self.fields: dict[str, str] = {}
        self.error: ArchiveError | None = None

    def begin(self) -> None:
        self.headers, self.header_bytes, self.sink, self.field_name = {}, 0, None, None
        self.field_value = bytearray()

    def header_part(self, data: bytes, start: int, end: int, value: bool) -> None:
        self.header_bytes += end - start
        if self.header_bytes > MAX_HEADER_BYTES:
            raise ArchiveError(Problem("UNSAFE_ARCHIVE_ENTRY", "a part's headers are too long"))
        if value:
            self.header_value += data[start:end]
        else:
            self.header_field += data[start:end]

    def header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field, self.header_value = b"", b""

    def headers_done(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        filename = options.get(b"filename")
        if filename is not None:
            # surrogateescape keeps undecodable bytes visible, so safe_relpath can refuse them
            self.sink = self.staging.open_file(filename.decode("utf-8", "surrogateescape"))
        else:
            self.field_name = options.get(b"name", b"").decode("utf-8", "replace")

    def data(self, data: bytes, start: int, end: int) -> None:
        if self.sink is not None:
            self.sink.write(data[start:end])
        else:
            self.field_value += data[start:end]
            if len(self.field_value) > MAX_FIELD_BYTES:
                raise ArchiveError(Problem("UNSAFE_ARCHIVE_ENTRY", f"form field {self.field_name!r} is too long"))

    def end(self) -> None:
        if self.sink is not None:
            self.sink.close()
        elif self.field_name:
            self.fields[self.field_name] = self.field_value.decode("utf-8", "replace")


def extract_multipart(
    body: Path, content_type: str, dest: Path, limits: ArchiveLimits | None = None
) -> tuple[Staging, dict[str, str]]:
    """Write the uploaded files under ``dest``; returns the staging and the plain form fields."""
    staging = Staging(dest, limits or ArchiveLimits())
    state = _FormState(staging)
    parser = MultipartParser(
        boundary_of(content_type),
        {
            "on_part_begin": state.begin,
            "on_header_field": lambda d, s, e: state.header_part(d, s, e, False),
            "on_header_value": lambda d, s, e: state.header_part(d, s, e, True),
            "on_header_end": state.header_end,
            "on_headers_finished": state.headers_done,
            "on_part_data": state.data,
            "on_part_end": state.end,
        },
    )
    try:
        with body.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                parser.write(chunk)
        parser.finalize()
    except MultipartParseError as error:
        raise ArchiveError(Problem("INVALID_ARCHIVE", f"the multipart upload is malformed: {error}")) from None
    finally:
        if state.sink is not None:
            state.sink.abort()
    if not staging.names:
        raise ArchiveError(Problem("FILE_DOES_NOT_EXIST", "the upload holds no files"))
    return staging, state.fields
