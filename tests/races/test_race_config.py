"""Race settings validation: defaults, each field's bad values, all problems at once, status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from race_server.races.config import RaceConfigError, parse_race_config, race_status

CLASSIC: dict[str, Any] = {
    "name": "Friday cup",
    "format": "classic",
    "track_id": "reinvent_base",
    "start": "2025-07-01T09:00:00",
    "end": "2025-07-08T09:00:00",
    "time_zone": "America/Los_Angeles",
}
LIVE: dict[str, Any] = {
    "name": "Live night",
    "format": "live",
    "track_id": "reinvent_base",
    "start": "2025-07-01T19:00:00Z",
}


def problems(data: dict[str, Any]) -> dict[str, list[str]]:
    with pytest.raises(RaceConfigError) as raised:
        parse_race_config(data)
    return raised.value.by_field()


def test_classic_defaults() -> None:
    config = parse_race_config(CLASSIC)
    assert config.direction == "COUNTER_CLOCKWISE" and config.route_id == "reinvent_base" and not config.reverse
    assert config.start.utcoffset() == timedelta(hours=-7)
    assert (config.ranking, config.min_consecutive_laps, config.resets) == ("best_lap", 3, "unlimited")
    assert (config.off_track_penalty_s, config.collision_penalty_s) == (3.0, 3.0)
    assert (config.time_per_racer_min, config.time_per_racer_s, config.evaluation_trials) == (3, 180.0, 3)
    assert config.object_avoidance is None and config.head_to_bot is None
    assert parse_race_config(config.to_dict()) == config


def test_live_defaults_to_four_hours_best_lap_and_one_lap() -> None:
    config = parse_race_config(LIVE)
    assert config.is_live and config.end - config.start == timedelta(hours=4)
    assert config.min_consecutive_laps == 1 and config.ranking == "best_lap" and config.replay_s == 15.0


def test_direction_resolves_a_route_variant() -> None:
    config = parse_race_config({**CLASSIC, "track_id": "2024_reinvent_champ", "direction": "CLOCKWISE"})
    assert config.route_id == "2024_reinvent_champ_cw" and not config.reverse


def test_object_avoidance_and_head_to_bot() -> None:
    oa = parse_race_config(
        {
            **CLASSIC,
            "race_type": "object_avoidance",
            "object_avoidance": {
                "obstacles": [{"lane": "inside", "location_pct": 20}, {"lane": "outside", "location_pct": 60}]
            },
        }
    )
    assert oa.object_avoidance is not None and oa.object_avoidance.count == 2
    assert parse_race_config(oa.to_dict()) == oa
    random = parse_race_config(
        {**CLASSIC, "race_type": "object_avoidance", "object_avoidance": {"randomize": True, "count": 4}}
    )
    assert random.object_avoidance is not None and random.object_avoidance.obstacles == ()
    h2b = parse_race_config({**CLASSIC, "race_type": "head_to_bot", "head_to_bot": {"bots": 6, "lane_change": True}})
    assert h2b.head_to_bot is not None and (h2b.head_to_bot.bots, h2b.head_to_bot.speed_mps) == (6, 1.0)
    assert parse_race_config(h2b.to_dict()) == h2b


BAD_VALUES = [
    ("name", "", "name: must not be empty; allowed: 1 to 64 characters"),
    ("name", "x" * 65, "name: 65 characters is too long; allowed: 1 to 64 characters"),
    ("format", "sprint", "format: 'sprint' is not a race format; allowed values: classic, live"),
    ("race_type", "drag", "race_type: 'drag' is not a race type; allowed values: time_trial, object_avoidance, "
     "head_to_bot"),
    ("track_id", "nowhere", "track_id: unknown track 'nowhere'; allowed values:"),
    ("direction", "CLOCKWISE", "direction: 'CLOCKWISE' is not enabled for track 'reinvent_base'; "
     "allowed values: COUNTER_CLOCKWISE"),
    ("direction", "left", "direction: 'left' is not a direction; allowed values: CLOCKWISE, COUNTER_CLOCKWISE"),
    ("time_zone", "Mars/Olympus", "time_zone: unknown time zone 'Mars/Olympus'; allowed values: IANA names"),
    ("start", "tomorrow", "start: 'tomorrow' is not a date and time; allowed values: an ISO 8601 date and time"),
    ("end", "2025-06-01T00:00:00", "end: 2025-06-01T00:00:00-07:00 is not after start"),
    ("ranking", "median", "ranking: 'median' is not a ranking method; allowed values: best_lap, average, total_time"),
    ("off_track_penalty_s", 31, "off_track_penalty_s: 31 is out of range; allowed values: 0 to 30 seconds"),
    ("off_track_penalty_s", -1, "off_track_penalty_s: -1 is out of range; allowed values: 0 to 30 seconds"),
    ("off_track_penalty_s", "3", "off_track_penalty_s: '3' is not a number; allowed values: 0 to 30 seconds"),
    ("collision_penalty_s", 30.5, "collision_penalty_s: 30.5 is out of range; allowed values: 0 to 30 seconds"),
    ("resets", 3, "resets: 3 is not a resets policy; allowed values: unlimited, none"),
    ("min_consecutive_laps", 0, "min_consecutive_laps: 0 is out of range; allowed values: whole numbers 1 to 10 laps"),
    ("min_consecutive_laps", 11, "min_consecutive_laps: 11 is out of range; allowed values: whole numbers 1 to 10"),
    ("min_consecutive_laps", 2.5, "min_consecutive_laps: 2.5 is not a whole number; allowed values: whole numbers"),
    ("time_per_racer_min", 11, "time_per_racer_min: 11 is out of range; allowed values: whole numbers 1 to 10 minutes"),
    ("time_per_racer_min", True, "time_per_racer_min: True is not a whole number"),
    ("evaluation_trials", 0, "evaluation_trials: 0 is out of range; allowed values: whole numbers 1 to 10 trials"),
    ("replay_s", 61, "replay_s: 61 is out of range; allowed values: 0 to 60 seconds"),
    ("description", "x" * 2001, "description: 2001 characters is too long; allowed: 0 to 2000 characters"),
    ("description", "bell\x07", "description: contains control characters"),
    ("closed", "yes", "closed: 'yes' is not a boolean; allowed values: true, false"),
    ("colour", "red", "colour: unknown setting; allowed settings:"),
    ("object_avoidance", {"count": 2},
     "object_avoidance: only for race_type object_avoidance; this race is time_trial"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "value", "message"), BAD_VALUES, ids=[f"{k}={v!r}"[:40] for k, v, _ in BAD_VALUES])
def test_each_bad_value_names_its_field_and_the_allowed_values(key: str, value: Any, message: str) -> None:
    found = problems({**CLASSIC, key: value})
    assert list(found) == [key]
    assert found[key][0].startswith(message)


LIVE_BAD = [
    ("ranking", "average", "ranking: 'average': LIVE races rank by best lap; allowed values: best_lap"),
    ("min_consecutive_laps", 3, "min_consecutive_laps: 3 is out of range; allowed values: whole numbers 1 to 1"),
]


@pytest.mark.parametrize(("key", "value", "message"), LIVE_BAD)
def test_live_only_allows_best_lap_and_one_lap(key: str, value: Any, message: str) -> None:
    assert problems({**LIVE, key: value})[key][0].startswith(message)


def test_required_fields() -> None:
    found = problems({})
    assert set(found) == {"name", "format", "track_id", "start", "end"}  # end: unknown format, so required
    assert found["format"] == ["format: required; allowed values: classic, live"]
    assert problems({**CLASSIC, "end": None})["end"] == [
        "end: required; allowed values: an ISO 8601 date and time, e.g. 2025-07-08T19:00:00-07:00"
    ]


def test_object_avoidance_problems() -> None:
    base = {**CLASSIC, "race_type": "object_avoidance"}
    assert problems(base)["object_avoidance.count"][0].startswith(
        "object_avoidance.count: required; allowed values: whole numbers 1 to 6"
    )
    found = problems(
        {
            **base,
            "object_avoidance": {
                "count": 7,
                "obstacles": [
                    {"lane": "middle", "location_pct": 95},
                    {"lane": "inside", "location_pct": 50, "size": 2},
                ],
            },
        }
    )
    assert found == {
        "object_avoidance.obstacles[0].lane": [
            "object_avoidance.obstacles[0].lane: 'middle' is not a lane; allowed values: inside, outside"
        ],
        "object_avoidance.obstacles[0].location_pct": [
            "object_avoidance.obstacles[0].location_pct: 95 is out of range; allowed values: 7 to 90 % of the lap"
        ],
        "object_avoidance.obstacles[1].size": [
            "object_avoidance.obstacles[1].size: unknown setting; allowed settings: lane, location_pct"
        ],
        "object_avoidance.count": [
            "object_avoidance.count: 7 is out of range; allowed values: whole numbers 1 to 6 boxes"
        ],
    }
    mismatch = problems(
        {**base, "object_avoidance": {"count": 3, "obstacles": [{"lane": "inside", "location_pct": 20}]}}
    )
    assert mismatch["object_avoidance.obstacles"][0].startswith(
        "object_avoidance.obstacles: 1 obstacles given for count 3"
    )
    both = problems(
        {
            **base,
            "object_avoidance": {"randomize": True, "count": 1, "obstacles": [{"lane": "inside", "location_pct": 20}]},
        }
    )
    assert "must be empty when randomize is true" in both["object_avoidance.obstacles"][0]


def test_head_to_bot_problems() -> None:
    found = problems(
        {
            **CLASSIC,
            "race_type": "head_to_bot",
            "head_to_bot": {"bots": 7, "speed_mps": 0.1, "min_lane_change_s": 6, "max_lane_change_s": 2},
        }
    )
    assert found["head_to_bot.bots"] == [
        "head_to_bot.bots: 7 is out of range; allowed values: whole numbers 1 to 6 bot cars"
    ]
    assert found["head_to_bot.speed_mps"] == [
        "head_to_bot.speed_mps: 0.1 is out of range; allowed values: 0.2 to 6 m/s"
    ]
    assert found["head_to_bot.max_lane_change_s"] == [
        "head_to_bot.max_lane_change_s: 2 is below min_lane_change_s 6; allowed values: 6 to 8 seconds"
    ]
    assert "is not an object" in problems({**CLASSIC, "race_type": "head_to_bot", "head_to_bot": 3})["head_to_bot"][0]


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(RaceConfigError) as raised:
        parse_race_config({**CLASSIC, "name": "", "off_track_penalty_s": 99, "resets": "some", "evaluation_trials": 0})
    fields = [p.field for p in raised.value.problems]
    assert fields == ["name", "off_track_penalty_s", "resets", "evaluation_trials"]
    assert str(raised.value).count(";") >= 4
    with pytest.raises(RaceConfigError, match="must be an object"):
        parse_race_config([])  # type: ignore[arg-type]


def test_status_from_dates_and_the_closed_flag() -> None:
    config = parse_race_config(LIVE)
    before = datetime(2025, 7, 1, 18, 59, tzinfo=UTC)
    assert config.status(before) == "opening_soon"
    assert config.status(before + timedelta(minutes=1)) == "open"
    assert config.status(config.end) == "closed"
    closed = parse_race_config({**LIVE, "closed": True})
    assert closed.status(before + timedelta(hours=1)) == "closed"
    with pytest.raises(ValueError, match="timezone-aware"):
        race_status(config.start, config.end, False, datetime(2025, 7, 1))


def test_description_keeps_links() -> None:
    config = parse_race_config(
        {**LIVE, "description": "Stream: https://twitch.tv/ours. Bridge (https://meet.example/x)"}
    )
    assert config.description_links() == ["https://twitch.tv/ours", "https://meet.example/x"]
