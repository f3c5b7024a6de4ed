"""How a LIVE race's queue machine is stored (``races.queue_state``) and what it is built from."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from race_server.queue.machine import QueueEntry, QueueMachine, QueueSettings, Run
from race_server.races.config import RaceConfig

COUNTDOWN_S = 10


def dump_machine(machine: QueueMachine, now: float) -> dict[str, Any]:
    return {
        "machine": {
            "settings": asdict(machine.settings),
            "simulator": machine.simulator,
            "stage": machine.stage,
            "entries_open": machine.entries_open,
            "queue": [asdict(e) for e in machine.queue],
            "version": machine.version,
            "drafts": dict(machine.drafts),
            "run": None if machine.run is None else asdict(machine.run),
            "winner": machine.winner,
            "finished": list(machine.finished),
            "next_run_id": machine.next_run_id,
        },
        "snapshot": machine.snapshot(now),
    }


def load_machine(state: dict[str, Any] | None, settings: QueueSettings) -> QueueMachine:
    machine = QueueMachine(settings)
    if state is None:
        return machine
    m = state["machine"]
    machine.simulator = m["simulator"]
    machine.stage = m["stage"]
    machine.entries_open = m["entries_open"]
    machine.queue = tuple(QueueEntry(**e) for e in m["queue"])
    machine.version = m["version"]
    machine.drafts = dict(m["drafts"])
    machine.run = None if m["run"] is None else Run(**m["run"])
    machine.winner = m["winner"]
    machine.finished = tuple(m["finished"])
    machine.next_run_id = m["next_run_id"]
    return machine


def needs_owner(state: dict[str, Any] | None) -> bool:
    """Did the stored race have a simulator or a run when its owner last wrote? Then a new owner
    must take it over (the old one is gone)."""
    machine = (state or {}).get("machine")
    if not machine:
        return False
    return machine["simulator"] in ("launching", "running") or machine["run"] is not None


def is_over(state: dict[str, Any] | None) -> bool:
    """A declared winner ends a LIVE race: nothing of it needs a simulator any more."""
    machine = (state or {}).get("machine")
    return bool(machine) and machine.get("winner") is not None  # type: ignore[union-attr]


def queue_settings(
    config: RaceConfig, countdown_s: int = COUNTDOWN_S, time_per_racer_s: float | None = None
) -> QueueSettings:
    slot = time_per_racer_s if time_per_racer_s is not None else config.time_per_racer_s
    return QueueSettings(time_per_racer_s=slot, countdown_s=countdown_s, replay_s=config.replay_s)


def objects_of(config: RaceConfig) -> dict[str, Any]:
    """The race's objects as ``race_server.sim.objects.ObjectsConfig`` fields."""
    if config.object_avoidance is not None:
        oa = config.object_avoidance
        return {
            "race_type": "OBJECT_AVOIDANCE",
            "number_of_obstacles": oa.count,
            "randomize_obstacle_locations": oa.randomize,
            "object_positions": tuple((o.location_pct, o.lane) for o in oa.obstacles),
        }
    if config.head_to_bot is not None:
        hb = config.head_to_bot
        return {
            "race_type": "HEAD_TO_BOT",
            "number_of_bots": hb.bots,
            "bot_speed": hb.speed_mps,
            "is_lane_change": hb.lane_change,
            "lower_lane_change_time": hb.min_lane_change_s,
            "upper_lane_change_time": hb.max_lane_change_s,
        }
    return {"race_type": "TIME_TRIAL"}
