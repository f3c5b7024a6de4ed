"""The LIVE race queue as a pure state machine (guide "Run a LIVE race").

State: the simulator (not_created → launching through stages ready → set → go → running; failed),
model entries (open / closed), the racer queue (built from the last submissions when entries
close; "red rows" whose model cannot be loaded), organizer edit drafts (per editor, with a version
check on save), the current run (countdown → running → replay) and the declared winner.

Every command returns the events to store and publish: dicts with a ``"type"`` and a payload
(shapes in ``race_server.protocol``); event ids are assigned by the persisting service. Every
illegal command raises ``QueueError(code, message)`` with a message meant for the organizer.
Time is passed in (``now``: monotonic seconds); nothing here reads a clock.

A run: ``launch_racer`` (top of the queue only) → countdown 10…1 (``tick`` emits each second) →
Go at launch + countdown_s (the racer's clock starts) → running for time_per_racer_s →
``checkered`` at exactly Go + slot → replay for replay_s → ``replay_ended`` and ``up_next``.
Scheduled instants are exact: a late ``tick`` still reports Go / the flag at their scheduled time
(``run`` holds ``go_at`` and ``ends_at``), and skips stale countdown numbers.
A failed or interrupted run (``run_failed``, ``reset_simulator``, ``simulator_failed``) puts the
racer back at the top flagged for relaunch; ``relaunch_racer`` (or launching that top row) gives a
fresh full slot. Launching during a replay ends the replay early.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

SimulatorStatus = Literal["not_created", "launching", "running", "failed"]
SimulatorStage = Literal["ready", "set", "go"]
STAGES: tuple[SimulatorStage, ...] = ("ready", "set", "go")
RunPhase = Literal["countdown", "running", "replay"]
Event = dict[str, Any]


class QueueError(Exception):
    """An illegal transition: ``code`` for programs, ``message`` for the organizer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class QueueSettings:
    time_per_racer_s: float = 180.0
    countdown_s: int = 10
    replay_s: float = 15.0

    def __post_init__(self) -> None:
        if self.time_per_racer_s <= 0 or self.countdown_s < 0 or self.replay_s < 0:
            raise ValueError("QueueSettings: time_per_racer_s must be > 0, countdown_s and replay_s >= 0")


@dataclass(frozen=True, slots=True)
class Submission:
    """A racer's model submission; ``loadable`` False makes a red row (``error`` says why)."""

    racer_id: int
    model_id: int
    submitted_at: float  # any increasing key (row id, timestamp): the last one races
    loadable: bool = True
    error: str | None = None


@dataclass(frozen=True, slots=True)
class QueueEntry:
    racer_id: int
    model_id: int
    red: bool = False
    error: str | None = None
    relaunch: bool = False  # the racer's last run failed; launching gives a fresh slot


@dataclass(frozen=True, slots=True)
class Run:
    run_id: int
    racer_id: int
    model_id: int
    relaunch: bool
    phase: RunPhase
    launched_at: float
    go_at: float
    ends_at: float  # checkered flag: go_at + time per racer
    replay_ends_at: float
    announced: int  # last countdown number published


def _who(racer_id: int) -> str:
    return f"racer {racer_id}"


class QueueMachine:
    """One LIVE race's queue state. Read the public attributes; change them only via commands."""

    def __init__(self, settings: QueueSettings | None = None) -> None:
        self.settings = settings or QueueSettings()
        self.simulator: SimulatorStatus = "not_created"
        self.stage: SimulatorStage | None = None
        self.entries_open = True
        self.queue: tuple[QueueEntry, ...] = ()
        self.version = 0
        self.drafts: dict[str, int] = {}  # editor id → version the draft started from
        self.run: Run | None = None
        self.winner: int | None = None
        self.finished: tuple[int, ...] = ()  # racers whose run reached the checkered flag
        self.next_run_id = 1

    # --- views -------------------------------------------------------------------------------
    @property
    def run_in_progress(self) -> bool:
        return self.run is not None and self.run.phase in ("countdown", "running")

    def can_control_speed(self, racer_id: int) -> bool:
        """Speed control is the on-track racer's, from Go to the checkered flag only."""
        return self.run is not None and self.run.phase == "running" and self.run.racer_id == racer_id

    def coming_up(self, now: float) -> list[tuple[QueueEntry, float]]:
        """Queue rows with the estimated seconds until each is launched (COMING UP)."""
        s = self.settings
        per_racer = s.countdown_s + s.time_per_racer_s + s.replay_s
        wait = 0.0
        if self.run is not None:
            wait = max(0.0, self.run.replay_ends_at - now)
        return [(entry, wait + index * per_racer) for index, entry in enumerate(self.queue)]

    def snapshot(self, now: float) -> dict[str, Any]:
        """The whole state for a client joining (protocol "snapshot" → "queue")."""
        run = None
        if self.run is not None:
            r = self.run
            run = {
                "run_id": r.run_id,
                "racer_id": r.racer_id,
                "model_id": r.model_id,
                "relaunch": r.relaunch,
                "phase": r.phase,
                "countdown_remaining_s": max(0.0, r.go_at - now),
                "time_remaining_s": max(0.0, r.ends_at - max(now, r.go_at)),
                "replay_remaining_s": max(0.0, r.replay_ends_at - max(now, r.ends_at)),
            }
        return {
            "simulator": self.simulator,
            "stage": self.stage,
            "entries_open": self.entries_open,
            "version": self.version,
            "entries": [asdict(entry) for entry in self.queue],
            "coming_up_s": [round(eta, 3) for _, eta in self.coming_up(now)],
            "run": run,
            "winner": self.winner,
            "finished": list(self.finished),
            "settings": asdict(self.settings),
        }

    # --- event helpers -----------------------------------------------------------------------
    def _queue_event(self) -> Event:
        return {"type": "queue", "version": self.version, "entries": [asdict(entry) for entry in self.queue]}

    def _set_queue(self, entries: Sequence[QueueEntry]) -> Event:
        self.queue = tuple(entries)
        self.version += 1
        return self._queue_event()

    def _simulator_event(self) -> Event:
        return {"type": "simulator", "status": self.simulator, "stage": self.stage}

    def _run_event(self, kind: str, run: Run, **payload: Any) -> Event:
        return {"type": kind, "run_id": run.run_id, "racer_id": run.racer_id, **payload}

    # --- guards ------------------------------------------------------------------------------
    def _not_over(self) -> None:
        if self.winner is not None:
            raise QueueError("race_over", f"The winner ({_who(self.winner)}) has been declared; the race is over.")

    def _no_run(self, doing: str) -> None:
        if self.run is not None and self.run_in_progress:
            raise QueueError(
                "run_in_progress",
                f"{_who(self.run.racer_id).capitalize()} is on track (run {self.run.run_id}, {self.run.phase}); "
                f"wait for the checkered flag before you {doing}.",
            )

    def _need_queue(self, doing: str) -> None:
        if self.entries_open:
            raise QueueError(
                "entries_open",
                f"Model entries are open: turn off 'Model entries open' to build the queue before you {doing}.",
            )

    def _need_simulator(self) -> None:
        if self.simulator != "running":
            detail = {
                "not_created": "it has not been launched: choose Launch simulator",
                "launching": f"it is still starting (stage: {self.stage or 'queued'}); wait for Go",
                "failed": "it failed: choose Reset simulator",
            }.get(self.simulator, self.simulator)
            raise QueueError("simulator_not_ready", f"The simulator is not ready: {detail}.")

    # --- simulator ---------------------------------------------------------------------------
    def launch_simulator(self) -> list[Event]:
        if self.simulator in ("launching", "running"):
            raise QueueError(
                "simulator_already_launched",
                f"The simulator is already {self.simulator}; use Reset simulator to restart it.",
            )
        self.simulator, self.stage = "launching", None
        return [self._simulator_event()]

    def simulator_stage(self, stage: SimulatorStage) -> list[Event]:
        """The RaceHost reports progress: ready → set → go (go means running)."""
        if self.simulator != "launching":
            raise QueueError(
                "simulator_not_launching",
                f"The simulator is {self.simulator.replace('_', ' ')}, not launching; stage {stage!r} is out of place.",
            )
        expected = STAGES[0] if self.stage is None else STAGES[min(STAGES.index(self.stage) + 1, len(STAGES) - 1)]
        if stage != expected:
            raise QueueError(
                "stage_out_of_order",
                f"Simulator stage {stage!r} cannot follow {self.stage or 'launch'}; expected {expected!r}.",
            )
        self.stage = stage
        if stage == "go":
            self.simulator = "running"
        return [self._simulator_event()]

    def simulator_failed(self, reason: str, now: float) -> list[Event]:
        if self.simulator not in ("launching", "running"):
            raise QueueError("simulator_not_launched", f"The simulator is {self.simulator.replace('_', ' ')}.")
        events = self.interrupt(f"simulator failed: {reason}", now)
        self.simulator = "failed"
        events.append({**self._simulator_event(), "reason": reason})
        return events

    def reset_simulator(self, now: float) -> list[Event]:
        """Restart the simulator; a run in progress is interrupted (the racer can be relaunched)."""
        if self.simulator == "not_created":
            raise QueueError(
                "simulator_not_launched", "The simulator has not been launched yet: choose Launch simulator."
            )
        events = self.interrupt("simulator reset", now)
        self.simulator, self.stage = "launching", None
        events.append(self._simulator_event())
        return events

    def interrupt(self, reason: str, now: float) -> list[Event]:
        if self.run is None:
            return []
        if self.run.phase == "replay":
            return self._end_replay()
        return self.run_failed(reason, now)

    # --- entries and the queue ---------------------------------------------------------------
    def set_entries_open(self, open_: bool, submissions: Sequence[Submission] = ()) -> list[Event]:
        """Closing builds the queue from each racer's last submission (racers who already finished
        a run are left out); reopening discards the queue and every draft."""
        self._not_over()
        if open_:
            if self.entries_open:
                raise QueueError("entries_already_open", "Model entries are already open.")
            self._no_run("reopen model entries")
            self.entries_open = True
            self.drafts.clear()
            return [{"type": "entries", "open": True}, self._set_queue(())]
        if not self.entries_open:
            raise QueueError("entries_already_closed", "Model entries are already closed.")
        last: dict[int, Submission] = {}
        for sub in submissions:
            held = last.get(sub.racer_id)
            if held is None or sub.submitted_at >= held.submitted_at:
                last[sub.racer_id] = sub
        chosen = sorted(
            (sub for sub in last.values() if sub.racer_id not in self.finished),
            key=lambda sub: (sub.submitted_at, sub.racer_id),
        )
        entries = [
            QueueEntry(sub.racer_id, sub.model_id, red=not sub.loadable, error=None if sub.loadable else sub.error)
            for sub in chosen
        ]
        self.entries_open = False
        return [{"type": "entries", "open": False}, self._set_queue(entries)]

    def begin_queue_edit(self, editor: str) -> list[Event]:
        """Open (or restart) ``editor``'s draft of the queue at the current version."""
        self._not_over()
        self._need_queue("edit it")
        self.drafts[editor] = self.version
        return [{"type": "queue_edit", "editor": editor, "action": "started", "version": self.version}]

    def cancel_queue_edit(self, editor: str) -> list[Event]:
        if editor not in self.drafts:
            raise QueueError("no_edit", "There is no queue edit to cancel: choose Edit first.")
        version = self.drafts.pop(editor)
        return [{"type": "queue_edit", "editor": editor, "action": "cancelled", "version": version}]

    def save_queue(self, editor: str, order: Sequence[int], version: int) -> list[Event]:
        """Save ``editor``'s draft: ``order`` lists the racers kept, in their new order (omitted
        racers are removed). Refused if the queue changed since ``version``."""
        self._not_over()
        self._need_queue("save the queue")
        if editor not in self.drafts:
            raise QueueError("no_edit", "There is no queue edit to save: choose Edit first.")
        if version != self.version:
            raise QueueError(
                "stale_version",
                f"The queue changed while you were editing (your version {version}, now {self.version}), "
                "perhaps in another tab or because a racer was launched. Cancel and edit again.",
            )
        by_racer = {entry.racer_id: entry for entry in self.queue}
        unknown = [racer for racer in order if racer not in by_racer]
        if unknown:
            raise QueueError(
                "invalid_order",
                f"Not in the queue: {', '.join(_who(r) for r in unknown)}; "
                "a saved queue may only reorder or remove rows.",
            )
        if len(set(order)) != len(order):
            duplicated = sorted({r for r in order if list(order).count(r) > 1})
            raise QueueError("invalid_order", f"Listed more than once: {', '.join(_who(r) for r in duplicated)}.")
        del self.drafts[editor]
        queue_event = self._set_queue([by_racer[racer] for racer in order])
        return [queue_event, {"type": "queue_edit", "editor": editor, "action": "saved", "version": self.version}]

    # --- runs --------------------------------------------------------------------------------
    def _launchable(self, doing: str) -> None:
        self._not_over()
        self._need_queue(doing)
        self._need_simulator()
        self._no_run(doing)

    def launch_racer(self, racer_id: int, now: float) -> list[Event]:
        """Launch the racer at the top of the queue (a red row cannot be launched)."""
        self._launchable("launch a racer")
        if not self.queue:
            raise QueueError("queue_empty", "The queue is empty: there is no racer to launch.")
        top = self.queue[0]
        if racer_id != top.racer_id:
            where = "is not in the queue" if all(e.racer_id != racer_id for e in self.queue) else "is not next"
            raise QueueError(
                "not_top_of_queue",
                f"{_who(racer_id).capitalize()} {where}: only the top of the queue ({_who(top.racer_id)}) can be "
                "launched; reorder the queue first.",
            )
        return self._launch(top, now)

    def relaunch_racer(self, racer_id: int, now: float) -> list[Event]:
        """Relaunch a racer whose run failed, wherever the row is: a fresh full slot."""
        self._launchable("relaunch a racer")
        entry = next((e for e in self.queue if e.racer_id == racer_id), None)
        if entry is None:
            raise QueueError("not_in_queue", f"{_who(racer_id).capitalize()} is not in the queue.")
        if not entry.relaunch:
            raise QueueError(
                "not_failed",
                f"{_who(racer_id).capitalize()} has no failed run to relaunch; use Launch for the top of the queue.",
            )
        return self._launch(entry, now)

    def _launch(self, entry: QueueEntry, now: float) -> list[Event]:
        if entry.red:
            raise QueueError(
                "red_row",
                f"{_who(entry.racer_id).capitalize()}'s model could not be loaded ({entry.error or 'unknown error'}); "
                "remove the row or reopen entries so they can submit again.",
            )
        events: list[Event] = []
        if self.run is not None:  # a replay: launching the next racer ends it
            events += self._end_replay(announce_next=False)
        s = self.settings
        go_at = now + s.countdown_s
        run = Run(
            run_id=self.next_run_id,
            racer_id=entry.racer_id,
            model_id=entry.model_id,
            relaunch=entry.relaunch,
            phase="countdown",
            launched_at=now,
            go_at=go_at,
            ends_at=go_at + s.time_per_racer_s,
            replay_ends_at=go_at + s.time_per_racer_s + s.replay_s,
            announced=s.countdown_s,
        )
        self.next_run_id += 1
        self.run = run
        events.append(self._set_queue([e for e in self.queue if e is not entry]))
        events.append(
            self._run_event(
                "run_launched",
                run,
                model_id=run.model_id,
                relaunch=run.relaunch,
                countdown_s=s.countdown_s,
                slot_s=s.time_per_racer_s,
            )
        )
        if s.countdown_s > 0:
            events.append(self._run_event("countdown", run, value=s.countdown_s))
        events += self.tick(now)
        return events

    def run_failed(self, reason: str, now: float) -> list[Event]:
        """The RaceHost reports the run failed (model crashed, sim died): the racer goes back to
        the top of the queue, flagged for relaunch."""
        if self.run is None or not self.run_in_progress:
            raise QueueError("no_run", "No run is in progress.")
        run = self.run
        self.run = None
        entry = QueueEntry(run.racer_id, run.model_id, relaunch=True)
        return [
            self._run_event("run_failed", run, reason=reason, at_s=max(0.0, now - run.go_at)),
            self._set_queue([entry, *self.queue]),
        ]

    def tick(self, now: float) -> list[Event]:
        """Advance the clock: countdown numbers, Go, the checkered flag, the end of the replay."""
        events: list[Event] = []
        while self.run is not None:
            run = self.run
            if run.phase == "countdown":
                if now >= run.go_at:
                    self.run = replace(run, phase="running", announced=0)
                    events.append(self._run_event("run_started", run, slot_s=self.settings.time_per_racer_s))
                    continue
                value = math.ceil(run.go_at - now)
                if value < run.announced:
                    self.run = replace(run, announced=value)
                    events.append(self._run_event("countdown", run, value=value))
                break
            if run.phase == "running":
                if now < run.ends_at:
                    break
                self.run = replace(run, phase="replay")
                if run.racer_id not in self.finished:
                    self.finished = (*self.finished, run.racer_id)
                events.append(self._run_event("checkered", run, replay_s=self.settings.replay_s))
                continue
            if now < run.replay_ends_at:
                break
            events += self._end_replay()
        return events

    def _end_replay(self, announce_next: bool = True) -> list[Event]:
        assert self.run is not None
        run, self.run = self.run, None
        events = [self._run_event("replay_ended", run)]
        if announce_next:
            events.append({"type": "up_next", "racer_id": self.queue[0].racer_id if self.queue else None})
        return events

    # --- leaderboard and the end -------------------------------------------------------------
    def clear_leaderboard(self) -> list[Event]:
        self._not_over()
        self._no_run("clear the leaderboard")
        return [{"type": "leaderboard_cleared"}]

    def declare_winner(self, winner: int | None, now: float) -> list[Event]:
        """``winner``: the leaderboard's first racer, or None when nobody is ranked."""
        if self.winner is not None:
            raise QueueError("winner_already_declared", f"The winner ({_who(self.winner)}) is already declared.")
        self._no_run("declare the winner")
        if winner is None:
            raise QueueError("no_ranked_racers", "Nobody is on the leaderboard yet: a winner needs a ranked lap.")
        events = self.tick(now)
        if self.run is not None:
            events += self._end_replay(announce_next=False)
        self.winner = winner
        self.drafts.clear()
        events.append({"type": "winner_declared", "racer_id": winner})
        return events
