"""Leaderboard rows (the LIVE page, DREM's top-N overlay and the classic leaderboard).

``build_leaderboard(laps, method, min_laps)`` ranks with ``race_server.races.ranking`` and adds
the columns racers see: rank, racer, time, gap to 1st, off-track count, collisions and laps. The
counts and laps come from the racer's ranked run (a LIVE run, or a classic submission's
evaluation). ``top_n(rows, n)`` cuts DREM's top-N (default 4); ``format_time_ms`` /
``format_gap_ms`` render "01:08.123" / "+00:00.521".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from race_server.races.ranking import Lap, RankingMethod, rank_laps

DREM_TOP_N = 4


@dataclass(frozen=True, slots=True)
class LeaderboardRow:
    rank: int
    racer_id: int
    racer_name: str | None
    time_ms: float
    gap_ms: float
    off_track: int
    collisions: int
    laps: int  # valid laps in the ranked run
    run_id: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_leaderboard(
    laps: Iterable[Lap],
    method: RankingMethod,
    min_laps: int,
    names: Mapping[int, str] | None = None,
    limit: int | None = None,
) -> list[LeaderboardRow]:
    rows = [
        LeaderboardRow(
            rank=result.rank,
            racer_id=result.racer_id,
            racer_name=(names or {}).get(result.racer_id),
            time_ms=result.time_ms,
            gap_ms=result.gap_ms,
            off_track=sum(lap.off_track for lap in result.run_laps),
            collisions=sum(lap.collisions for lap in result.run_laps),
            laps=sum(1 for lap in result.run_laps if lap.valid),
            run_id=result.run_id,
        )
        for result in rank_laps(laps, method, min_laps)
    ]
    return rows if limit is None else rows[:limit]


def top_n(rows: Sequence[LeaderboardRow], n: int = DREM_TOP_N) -> list[LeaderboardRow]:
    if n < 1:
        raise ValueError(f"n: {n} is out of range; allowed values: 1 or more")
    return list(rows[:n])


def format_time_ms(time_ms: float) -> str:
    """DeepRacer's MM:SS.mmm."""
    total = round(time_ms)
    minutes, rest = divmod(total, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{minutes:02d}:{seconds:02d}.{millis:03d}"


def format_gap_ms(gap_ms: float) -> str:
    return f"+{format_time_ms(gap_ms)}"
