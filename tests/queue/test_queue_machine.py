"""The LIVE queue state machine: every illegal transition with its message, and a full race."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from race_server.protocol import validate_server_message
from race_server.queue.machine import STAGES, QueueError, QueueMachine, QueueSettings, Submission

SETTINGS = QueueSettings(time_per_racer_s=60.0, countdown_s=10, replay_s=15.0)
# 13's model cannot be loaded (a red row); 11 resubmitted last, so the queue is 12, 13, 11.
SUBMISSIONS = (
    Submission(11, 101, submitted_at=1.0),
    Submission(12, 102, submitted_at=2.0),
    Submission(13, 103, submitted_at=3.0, loadable=False, error="model.onnx is missing"),
    Submission(11, 111, submitted_at=4.0),
)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def fresh() -> QueueMachine:
    return QueueMachine(SETTINGS)


def launching() -> QueueMachine:
    m = fresh()
    m.launch_simulator()
    return m


def sim_ready() -> QueueMachine:
    m = launching()
    for stage in STAGES:
        m.simulator_stage(stage)
    return m


def closed() -> QueueMachine:
    m = sim_ready()
    m.set_entries_open(False, SUBMISSIONS)
    return m


def closed_without_simulator() -> QueueMachine:
    m = fresh()
    m.set_entries_open(False, SUBMISSIONS)
    return m


def closed_empty() -> QueueMachine:
    m = sim_ready()
    m.set_entries_open(False, ())
    return m


def red_on_top() -> QueueMachine:
    m = closed()
    m.begin_queue_edit("tab")
    m.save_queue("tab", [13, 12, 11], m.version)
    return m


def countdown() -> QueueMachine:
    m = closed()
    m.launch_racer(12, now=100.0)
    return m


def running() -> QueueMachine:
    m = countdown()
    m.tick(110.0)
    return m


def replay() -> QueueMachine:
    m = running()
    m.tick(170.0)
    return m


def failed() -> QueueMachine:
    m = running()
    m.run_failed("policy crashed", now=120.0)
    return m


def over() -> QueueMachine:
    m = replay()
    m.declare_winner(12, now=171.0)
    return m


def editing() -> QueueMachine:
    m = closed()
    m.begin_queue_edit("tab")
    return m


Command = Callable[[QueueMachine], object]

ILLEGAL: list[tuple[str, Callable[[], QueueMachine], Command, str, str]] = [
    # (id, state, command, code, words in the message)
    ("stage-before-launch", fresh, lambda m: m.simulator_stage("ready"), "simulator_not_launching", "not launching"),
    ("fail-before-launch", fresh, lambda m: m.simulator_failed("x", 0.0), "simulator_not_launched", "not created"),
    ("reset-before-launch", fresh, lambda m: m.reset_simulator(0.0), "simulator_not_launched", "Launch simulator"),
    ("open-when-open", fresh, lambda m: m.set_entries_open(True), "entries_already_open", "already open"),
    ("edit-entries-open", fresh, lambda m: m.begin_queue_edit("tab"), "entries_open", "Model entries are open"),
    ("save-entries-open", fresh, lambda m: m.save_queue("tab", [], 0), "entries_open", "build the queue"),
    ("cancel-no-edit", fresh, lambda m: m.cancel_queue_edit("tab"), "no_edit", "choose Edit"),
    ("launch-entries-open", sim_ready, lambda m: m.launch_racer(12, 0.0), "entries_open", "Model entries are open"),
    ("relaunch-entries-open", sim_ready, lambda m: m.relaunch_racer(12, 0.0), "entries_open", "entries open"),
    ("run-failed-no-run", closed, lambda m: m.run_failed("x", 0.0), "no_run", "No run is in progress"),
    ("winner-nobody-ranked", closed, lambda m: m.declare_winner(None, 0.0), "no_ranked_racers", "ranked lap"),
    ("launch-sim-twice", launching, lambda m: m.launch_simulator(), "simulator_already_launched", "Reset simulator"),
    ("launch-sim-running", sim_ready, lambda m: m.launch_simulator(), "simulator_already_launched", "running"),
    ("stage-skipped", launching, lambda m: m.simulator_stage("set"), "stage_out_of_order", "expected 'ready'"),
    ("stage-after-go", sim_ready, lambda m: m.simulator_stage("go"), "simulator_not_launching", "running"),
    ("launch-no-simulator", closed_without_simulator, lambda m: m.launch_racer(12, 0.0), "simulator_not_ready",
     "Launch simulator"),
    ("launch-sim-starting", lambda: _close(launching()), lambda m: m.launch_racer(12, 0.0), "simulator_not_ready",
     "wait for Go"),
    ("close-when-closed", closed, lambda m: m.set_entries_open(False, SUBMISSIONS), "entries_already_closed",
     "already closed"),
    ("save-without-edit", closed, lambda m: m.save_queue("tab", [12, 13, 11], m.version), "no_edit", "choose Edit"),
    ("launch-not-top", closed, lambda m: m.launch_racer(11, 0.0), "not_top_of_queue", "racer 12"),
    ("launch-unknown", closed, lambda m: m.launch_racer(99, 0.0), "not_top_of_queue", "not in the queue"),
    ("relaunch-not-failed", closed, lambda m: m.relaunch_racer(12, 0.0), "not_failed", "no failed run"),
    ("relaunch-unknown", closed, lambda m: m.relaunch_racer(99, 0.0), "not_in_queue", "Racer 99"),
    ("launch-empty-queue", closed_empty, lambda m: m.launch_racer(12, 0.0), "queue_empty", "empty"),
    ("launch-red-row", red_on_top, lambda m: m.launch_racer(13, 0.0), "red_row", "model.onnx is missing"),
    ("save-stale", editing, lambda m: m.save_queue("tab", [11, 12, 13], m.version - 1), "stale_version",
     "changed while you were editing"),
    ("save-unknown-racer", editing, lambda m: m.save_queue("tab", [12, 99], m.version), "invalid_order", "racer 99"),
    ("save-duplicate", editing, lambda m: m.save_queue("tab", [12, 12, 11], m.version), "invalid_order",
     "more than once"),
    ("save-other-tab", editing, lambda m: m.save_queue("other", [11], m.version), "no_edit", "choose Edit"),
    ("launch-during-countdown", countdown, lambda m: m.launch_racer(13, 101.0), "run_in_progress",
     "checkered flag"),
    ("relaunch-during-countdown", countdown, lambda m: m.relaunch_racer(12, 101.0), "run_in_progress",
     "countdown"),
    ("clear-during-countdown", countdown, lambda m: m.clear_leaderboard(), "run_in_progress", "leaderboard"),
    ("winner-during-countdown", countdown, lambda m: m.declare_winner(12, 101.0), "run_in_progress", "winner"),
    ("reopen-during-countdown", countdown, lambda m: m.set_entries_open(True), "run_in_progress", "entries"),
    ("launch-while-running", running, lambda m: m.launch_racer(13, 120.0), "run_in_progress", "Racer 12 is on track"),
    ("clear-while-running", running, lambda m: m.clear_leaderboard(), "run_in_progress", "running"),
    ("winner-while-running", running, lambda m: m.declare_winner(12, 120.0), "run_in_progress", "winner"),
    ("reopen-while-running", running, lambda m: m.set_entries_open(True), "run_in_progress", "entries"),
    ("relaunch-while-running", running, lambda m: m.relaunch_racer(12, 120.0), "run_in_progress", "relaunch"),
    ("launch-after-fail-not-top", failed, lambda m: m.launch_racer(13, 121.0), "not_top_of_queue", "racer 12"),
    ("launch-over", over, lambda m: m.launch_racer(13, 200.0), "race_over", "race is over"),
    ("relaunch-over", over, lambda m: m.relaunch_racer(13, 200.0), "race_over", "race is over"),
    ("entries-over", over, lambda m: m.set_entries_open(True), "race_over", "racer 12"),
    ("edit-over", over, lambda m: m.begin_queue_edit("tab"), "race_over", "race is over"),
    ("save-over", over, lambda m: m.save_queue("tab", [], m.version), "race_over", "race is over"),
    ("clear-over", over, lambda m: m.clear_leaderboard(), "race_over", "race is over"),
    ("winner-twice", over, lambda m: m.declare_winner(11, 200.0), "winner_already_declared", "already declared"),
]  # fmt: skip


def _close(m: QueueMachine) -> QueueMachine:
    m.set_entries_open(False, SUBMISSIONS)
    return m


@pytest.mark.parametrize(
    ("state", "command", "code", "words"), [row[1:] for row in ILLEGAL], ids=[r[0] for r in ILLEGAL]
)
def test_illegal_transition_is_refused_with_its_message_and_changes_nothing(
    state: Callable[[], QueueMachine], command: Command, code: str, words: str
) -> None:
    machine = state()
    before = copy.deepcopy(machine.__dict__)
    with pytest.raises(QueueError) as raised:
        command(machine)
    assert raised.value.code == code
    assert words in raised.value.message
    assert str(raised.value) == raised.value.message
    assert machine.__dict__ == before


def test_closing_entries_builds_the_queue_from_last_submissions_with_red_rows() -> None:
    m = sim_ready()
    events = m.set_entries_open(False, SUBMISSIONS)
    assert types(events) == ["entries", "queue"]
    assert [(e.racer_id, e.model_id, e.red) for e in m.queue] == [(12, 102, False), (13, 103, True), (11, 111, False)]
    assert m.queue[1].error == "model.onnx is missing"
    assert events[1]["version"] == m.version == 1


def test_two_tabs_cannot_clobber_each_other() -> None:
    m = closed()
    m.begin_queue_edit("tab-a")
    m.begin_queue_edit("tab-b")
    m.save_queue("tab-a", [11, 12, 13], m.version)
    stale = m.drafts["tab-b"]
    with pytest.raises(QueueError, match="your version 1, now 2") as raised:
        m.save_queue("tab-b", [13], stale)
    assert raised.value.code == "stale_version"
    assert [e.racer_id for e in m.queue] == [11, 12, 13]
    assert types(m.cancel_queue_edit("tab-b")) == ["queue_edit"]
    assert "tab-b" not in m.drafts


def test_cancel_discards_the_draft_and_keeps_the_queue() -> None:
    m = closed()
    m.begin_queue_edit("tab")
    events = m.cancel_queue_edit("tab")
    assert events == [{"type": "queue_edit", "editor": "tab", "action": "cancelled", "version": 1}]
    assert [e.racer_id for e in m.queue] == [12, 13, 11]
    with pytest.raises(QueueError):
        m.save_queue("tab", [11], 1)


def test_a_launch_makes_open_drafts_stale() -> None:
    m = closed()
    m.begin_queue_edit("tab")
    m.launch_racer(12, 0.0)
    with pytest.raises(QueueError) as raised:
        m.save_queue("tab", [11, 13], 1)
    assert raised.value.code == "stale_version"


def test_late_ticks_report_go_and_the_flag_at_their_scheduled_times() -> None:
    m = countdown()
    assert m.run is not None and m.run.go_at == 110.0 and m.run.ends_at == 170.0
    events = m.tick(200.0)  # one very late tick: Go, flag and replay end all happened
    assert types(events) == ["run_started", "checkered", "replay_ended", "up_next"]
    assert m.run is None


def test_countdown_skips_stale_numbers_but_never_repeats() -> None:
    m = countdown()
    assert [e["value"] for e in m.tick(100.5)] == []
    assert [e["value"] for e in m.tick(101.0)] == [9]
    assert [e["value"] for e in m.tick(105.2)] == [5]
    assert m.tick(105.3) == []


def test_relaunch_gives_a_fresh_full_slot() -> None:
    m = failed()
    assert m.queue[0].racer_id == 12 and m.queue[0].relaunch
    events = m.relaunch_racer(12, now=130.0)
    assert "run_launched" in types(events)
    run = m.run
    assert run is not None and run.relaunch and run.run_id == 2
    assert run.go_at == 140.0 and run.ends_at == 200.0
    assert [e.racer_id for e in m.queue] == [13, 11]


def test_reset_simulator_interrupts_the_run_and_needs_go_again() -> None:
    m = running()
    events = m.reset_simulator(now=130.0)
    assert types(events) == ["run_failed", "queue", "simulator"]
    assert events[0]["reason"] == "simulator reset" and events[0]["at_s"] == 20.0
    assert m.simulator == "launching" and m.queue[0].relaunch
    with pytest.raises(QueueError) as raised:
        m.relaunch_racer(12, 131.0)
    assert raised.value.code == "simulator_not_ready"


def test_speed_control_belongs_to_the_racer_on_track_between_go_and_the_flag() -> None:
    m = countdown()
    assert not m.can_control_speed(12)
    m.tick(110.0)
    assert m.can_control_speed(12) and not m.can_control_speed(11)
    m.tick(170.0)
    assert not m.can_control_speed(12)


def test_launching_during_the_replay_ends_it() -> None:
    m = replay()
    m.begin_queue_edit("tab")
    m.save_queue("tab", [11, 13], m.version)
    events = m.launch_racer(11, now=175.0)
    assert types(events)[:3] == ["replay_ended", "queue", "run_launched"]


def test_full_live_race() -> None:
    m = QueueMachine(SETTINGS)
    log: list[dict[str, Any]] = []
    log += m.launch_simulator()
    for stage in STAGES:
        log += m.simulator_stage(stage)
    assert m.simulator == "running"
    log += m.set_entries_open(False, SUBMISSIONS)
    log += m.begin_queue_edit("tab")
    log += m.save_queue("tab", [11, 12], m.version)  # reorder and remove the red row
    assert [e.racer_id for e in m.queue] == [11, 12]
    assert [round(eta) for _, eta in m.coming_up(0.0)] == [0, 85]

    log += m.launch_racer(11, now=1000.0)
    assert types(log[-2:]) == ["run_launched", "countdown"] and log[-1]["value"] == 10
    for second in range(1, 10):
        log += m.tick(1000.0 + second)
    assert [e["value"] for e in log if e["type"] == "countdown"] == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    log += m.tick(1010.0)
    assert log[-1] == {"type": "run_started", "run_id": 1, "racer_id": 11, "slot_s": 60.0}
    assert m.tick(1069.9) == []
    log += m.tick(1070.0)
    assert log[-1]["type"] == "checkered" and m.finished == (11,)
    log += m.tick(1085.0)
    assert log[-2:] == [
        {"type": "replay_ended", "run_id": 1, "racer_id": 11},
        {"type": "up_next", "racer_id": 12},
    ]

    log += m.launch_racer(12, now=1100.0)
    log += m.tick(1110.0)
    log += m.run_failed("policy crashed", now=1130.0)
    log += m.relaunch_racer(12, now=1140.0)
    log += m.tick(1150.0)
    log += m.tick(1210.0)
    log += m.clear_leaderboard()  # allowed during the replay
    log += m.declare_winner(12, now=1215.0)
    assert m.winner == 12 and m.run is None
    assert types(log[-3:]) == ["leaderboard_cleared", "replay_ended", "winner_declared"]
    for event in log:
        validate_server_message(event)  # every event is a protocol message as it stands
    snapshot = m.snapshot(1300.0)
    assert snapshot["winner"] == 12 and snapshot["finished"] == [11, 12] and snapshot["entries"] == []


def test_reopening_entries_discards_the_queue_and_skips_finished_racers_on_close() -> None:
    m = replay()
    m.tick(185.0)
    events = m.set_entries_open(True)
    assert types(events) == ["entries", "queue"] and events[1]["entries"] == []
    m.set_entries_open(False, SUBMISSIONS)
    assert [e.racer_id for e in m.queue] == [13, 11]  # 12 has raced


def test_snapshot_reports_run_clocks() -> None:
    m = running()
    snap = m.snapshot(130.0)
    assert snap["run"]["phase"] == "running"
    assert snap["run"]["time_remaining_s"] == 40.0
    assert snap["coming_up_s"] == [55.0, 140.0]


def test_simulator_failure_interrupts_the_run_and_allows_a_new_launch() -> None:
    m = running()
    events = m.simulator_failed("mujoco died", now=125.0)
    assert types(events) == ["run_failed", "queue", "simulator"]
    assert m.simulator == "failed"
    assert types(m.launch_simulator()) == ["simulator"]


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="time_per_racer_s"):
        QueueSettings(time_per_racer_s=0)
