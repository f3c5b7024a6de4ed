"""Simtrace CSV reader and writer, checked on real DeepRacer simtraces."""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from race_server.sim.simtrace import (
    BASE_COLUMNS,
    EPISODE_STATUSES,
    EXTENDED_COLUMNS,
    SimtraceRow,
    SimtraceWriter,
    read_simtrace,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "deepracer-formats"
DRFC_TRACE = FIXTURES / "drfc-run-v4-discrete" / "training-simtrace" / "0-iteration.csv"
DROA_BUNDLE = FIXTURES / "deepracer-on-aws-logs-v6" / "sample-droa-solution-logs.tar.gz"


def _droa_texts() -> dict[str, str]:
    with tarfile.open(DROA_BUNDLE, "r:gz") as tar:
        out = {}
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(".csv") and "simtrace" in member.name:
                raw = tar.extractfile(member)
                assert raw is not None
                out[member.name] = raw.read().decode("utf-8")
    return out


def _write(rows: list[SimtraceRow], extended: bool) -> str:
    buf = io.StringIO(newline="")
    SimtraceWriter(buf, extended=extended).write_rows(rows)
    return buf.getvalue()


def test_reads_drfc_trace_with_the_base_columns() -> None:
    text = DRFC_TRACE.read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(BASE_COLUMNS)
    rows = read_simtrace(DRFC_TRACE)
    assert len(rows) == 529
    first = rows[0]
    assert first == SimtraceRow(
        episode=0, steps=1, x=3.1999032745384617, y=0.6830977174476494, yaw=0.18402830554025268,
        steer=20.0, throttle=1.0, action=10, reward=0.0, done=False, all_wheels_on_track=True,
        progress=0.7915139235659773, closest_waypoint=1, track_len=17.709159380834848,
        tstamp=27.788, episode_status="prepare", pause_duration=0.0,
    )  # fmt: skip
    assert first.obstacle_crash_counter is None and first.wall_clock is None
    assert sum(r.done for r in rows) == 20  # one finished row per episode


def test_reads_deepracer_on_aws_traces_with_extended_columns() -> None:
    texts = _droa_texts()
    assert len(texts) == 3
    for name, text in texts.items():
        assert text.splitlines()[0] == ",".join(EXTENDED_COLUMNS), name
        rows = read_simtrace(io.StringIO(text, newline=""))
        assert len(rows) == len(text.splitlines()) - 1
        assert all(r.obstacle_crash_counter == 0 and r.wall_clock for r in rows)
        assert {r.episode_status for r in rows} <= set(EPISODE_STATUSES)
        assert all(-180.0 <= r.yaw <= 180.0 for r in rows)  # degrees in this version


@pytest.mark.parametrize("extended", [False, True])
def test_real_traces_round_trip_field_for_field(extended: bool) -> None:
    texts = list(_droa_texts().values()) if extended else [DRFC_TRACE.read_text("utf-8")]
    for text in texts:
        rows = read_simtrace(io.StringIO(text, newline=""))
        written = _write(rows, extended)
        assert len(written.splitlines()) == len(text.splitlines())
        progress = BASE_COLUMNS.index("progress")
        for ours, theirs in zip(written.splitlines(), text.splitlines(), strict=True):
            a, b = ours.split(","), theirs.split(",")
            # The simulator writes a completed lap's progress as the int 100; we write 100.0.
            if a[progress] == "100.0" and b[progress] == "100":
                a[progress] = "100"
            assert a == b
        assert read_simtrace(io.StringIO(written, newline="")) == rows


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
rows_strategy = st.builds(
    SimtraceRow,
    episode=st.integers(0, 10**6), steps=st.integers(0, 10**5), x=finite, y=finite, yaw=finite,
    steer=finite, throttle=finite, action=st.integers(-1, 500), reward=finite,
    done=st.booleans(), all_wheels_on_track=st.booleans(), progress=finite,
    closest_waypoint=st.integers(0, 10**4), track_len=finite, tstamp=finite,
    episode_status=st.sampled_from(EPISODE_STATUSES), pause_duration=finite,
    obstacle_crash_counter=st.integers(0, 100), wall_clock=finite,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(rows_strategy, max_size=5))
def test_any_rows_round_trip(rows: list[SimtraceRow]) -> None:
    assert read_simtrace(io.StringIO(_write(rows, True), newline="")) == rows


def test_round_trip_through_a_file(tmp_path: Path) -> None:
    rows = read_simtrace(DRFC_TRACE)[:30]
    path = tmp_path / "0-iteration.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        SimtraceWriter(f, extended=False).write_rows(rows)
    assert read_simtrace(path) == rows
    assert read_simtrace(str(path)) == rows


def test_base_writer_drops_extended_columns() -> None:
    row = read_simtrace(DRFC_TRACE)[0]
    text = _write([row], extended=False)
    assert text.splitlines()[0] == ",".join(BASE_COLUMNS)
    assert len(text.splitlines()[1].split(",")) == len(BASE_COLUMNS)


def test_missing_column_is_named() -> None:
    header = ",".join(c for c in BASE_COLUMNS if c != "progress")
    with pytest.raises(ValueError, match="missing columns progress"):
        read_simtrace(io.StringIO(header + "\n"))


@pytest.mark.parametrize(
    ("column", "value"),
    [("done", "maybe"), ("steps", "1.5"), ("X", "east"), ("episode_status", "")],
)
def test_bad_value_names_line_and_column(column: str, value: str) -> None:
    rows = DRFC_TRACE.read_text(encoding="utf-8").splitlines()[:3]
    header = rows[0].split(",")
    fields = rows[2].split(",")
    fields[header.index(column)] = value
    text = "\n".join([rows[0], rows[1], ",".join(fields)]) + "\n"
    with pytest.raises(ValueError, match=f"line 3, column {column}"):
        read_simtrace(io.StringIO(text))


def test_short_row_is_rejected() -> None:
    rows = DRFC_TRACE.read_text(encoding="utf-8").splitlines()[:2]
    with pytest.raises(ValueError, match="line 2"):
        read_simtrace(io.StringIO(rows[0] + "\n" + rows[1].rsplit(",", 3)[0] + "\n"))


def test_writer_refuses_non_finite_values_and_bad_status() -> None:
    row = read_simtrace(DRFC_TRACE)[0]
    buf = io.StringIO()
    writer = SimtraceWriter(buf)
    with pytest.raises(ValueError, match="finite"):
        writer.write(replace(row, reward=float("nan")))
    with pytest.raises(ValueError, match="episode_status"):
        writer.write(replace(row, episode_status="a,b"))
