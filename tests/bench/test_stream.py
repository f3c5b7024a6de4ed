"""`trackside bench stream`: late frames are counted from the browser's own counters, and the whole
benchmark runs end to end (a short version: the figures' targets are the benchmark's job)."""

from __future__ import annotations

import os

import pytest

from race_server.bench.stream import LATE_MS, late_frames, run_stream_bench
from race_server.stream.browser import CHROMIUM


def counters(presented: int, received: int | None = None) -> dict[str, float]:
    got = presented if received is None else received
    return {
        "received": got,
        "decoded": got,
        "rtpDropped": 0,
        "packetsLost": 0,
        "freezes": 0,
        "jitterBufferDelayS": 0.02 * got,
        "jitterBufferEmitted": got,
        "presented": presented,
    }


def timed(ages: list[float]) -> list[dict[str, object]]:
    return [{"presented": i, "width": 1280, "height": 720, "age": age} for i, age in enumerate(ages)]


def test_callbacks_the_page_missed_are_not_late_frames() -> None:
    # 100 frames encoded and presented; the page's callback ran for 90 of them, all on time
    result = late_frames(timed([50.0] * 90), counters(0), counters(100), encoded=100)
    assert result["late_frames_pct"] == 0.0
    assert result["browser_frames_presented"] == 100 and result["browser_frames_timed"] == 90
    assert result["browser_jitter_buffer_ms"] == 20.0


def test_frames_never_presented_and_frames_shown_late_both_count() -> None:
    # 200 encoded, 190 presented (10 never shown); a tenth of the timed ones older than LATE_MS
    ages = [LATE_MS + 1.0] * 10 + [40.0] * 90
    result = late_frames(timed(ages), counters(0), counters(190, received=195), encoded=200)
    assert result["browser_frames_presented_late"] == 19
    assert result["late_frames_pct"] == pytest.approx(100.0 * (10 + 19) / 200, abs=0.01)
    assert result["browser_frames_received"] == 195


def test_no_timed_frame_means_every_frame_counts_late() -> None:
    result = late_frames([], counters(0), counters(30), encoded=30)
    assert result["late_frames_pct"] == 100.0


@pytest.mark.slow
@pytest.mark.browser
def test_the_benchmark_reports_every_stream_figure() -> None:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    result = run_stream_bench(window_s=1.0, browser_s=3.0, viewer_steps=(1, 3))
    for key in ("render_ms_per_frame_720p", "overlay_ms_per_frame_720p", "encode_ms_per_frame_720p"):
        assert result[key] > 0.0
    assert set(result["cpu_pct_by_viewers"]) == {"1", "3"}
    assert result["sent_fps_min_at_3"] > 0.0 and result["tick_jitter_p99_ms"] >= 0.0
    assert result["browser_video_width"] == 1280
    assert result["browser_frames_presented"] > 0 and 0.0 <= result["late_frames_pct"] <= 100.0
    assert 0.0 < result["glass_to_glass_ms_p50"] <= result["glass_to_glass_ms_p95"]
