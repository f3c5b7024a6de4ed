"""CPU use of process trees and of the whole machine, from ``/proc`` (Linux): the race benchmark's
server CPU figure, measured apart from the benchmark's own client processes."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def all_processes() -> dict[int, tuple[int, int]]:
    """pid → (parent pid, user + system clock ticks) for every process."""
    out: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        rest = text.rsplit(")", 1)[1].split()
        out[int(entry)] = (int(rest[1]), int(rest[11]) + int(rest[12]))
    return out


def process_tree(procs: dict[int, tuple[int, int]], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in procs and pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found


def machine_busy() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass
class CpuSample:
    at: float
    ticks: dict[int, int]
    machine: tuple[int, int]

    @classmethod
    def take(cls) -> CpuSample:
        return cls(time.monotonic(), {pid: ticks for pid, (_, ticks) in all_processes().items()}, machine_busy())

    def machine_pct(self, start: CpuSample) -> float:
        """How busy the whole machine was (every process, anyone's), 100 % per core."""
        busy, total = self.machine[0] - start.machine[0], self.machine[1] - start.machine[1]
        return round(100.0 * (os.cpu_count() or 1) * busy / max(total, 1), 1)


def cpu_pct(start: CpuSample, end: CpuSample, pids: set[int]) -> float:
    """CPU % of ``pids`` between two samples (a process born in between counts from zero)."""
    used = sum(end.ticks[pid] - start.ticks.get(pid, 0) for pid in pids if pid in end.ticks)
    return round(100.0 * used / CLK_TCK / max(end.at - start.at, 1e-9), 1)
