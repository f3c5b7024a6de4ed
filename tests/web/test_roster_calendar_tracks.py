"""The small endpoints the pages need: racers by race role, the LIVE race's .ics, the track list."""

from __future__ import annotations

import httpx

from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.helpers import PASSWORD, login, make_user
from tests.web.helpers import live_race


async def test_racers_calendar_and_tracks(live_server: LiveServer, settings: Settings) -> None:
    await make_user(settings, "organizer", "org@example.com")
    async with login(live_server, "org@example.com") as organizer:
        race = (
            await organizer.post("/api/races", json=live_race(description="Bridge: https://meet.example.com/x"))
        ).json()
        race_id = race["id"]
        async with httpx.AsyncClient(base_url=live_server.url) as ann:
            account = {"email": "ann@example.com", "password": PASSWORD, "alias": "ann"}
            joined = await ann.post(f"/api/join/{race['invite_code']}", json=account)
            assert joined.status_code == 201
            ann_id = joined.json()["user_id"]
            as_racer = (await ann.get(f"/api/races/{race_id}/racers")).json()["racers"]
            assert as_racer == [{"user_id": ann_id, "alias": "ann"}]  # no emails for racers
            ics = await ann.get(f"/api/races/{race_id}/calendar.ics")
            assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
            lines = ics.text.split("\r\n")
            assert "BEGIN:VEVENT" in lines and "DTSTART:20200101T180000Z" in lines
            assert "SUMMARY:LIVE race: Friday night LIVE" in lines
            assert any(line.startswith("URL:") and line.endswith(f"/races/{race_id}/live") for line in lines)
        as_organizer = (await organizer.get(f"/api/races/{race_id}/racers")).json()["racers"]
        assert as_organizer[0]["email"] == "ann@example.com" and as_organizer[0]["removed"] is False
        assert (await organizer.delete(f"/api/races/{race_id}/racers/{ann_id}")).status_code == 200
        assert (await organizer.get(f"/api/races/{race_id}/racers")).json()["racers"][0]["removed"] is True
        viewer = (await organizer.post(f"/api/races/{race_id}/viewer-token")).json()["token"]
        tracks = (await organizer.get("/api/tracks")).json()["tracks"]
        assert any(t["track_id"] == "Bowtie_track" and t["length_m"] > 10 for t in tracks)
    async with httpx.AsyncClient(base_url=live_server.url) as anonymous:
        by_viewer = await anonymous.get(f"/api/races/{race_id}/racers", headers={"Authorization": f"Bearer {viewer}"})
        assert by_viewer.status_code == 200 and by_viewer.json()["racers"] == []  # ann was removed
        assert (await anonymous.get(f"/api/races/{race_id}/racers")).status_code == 401
        assert (await anonymous.get("/api/tracks")).status_code == 401
