"""Health, metrics and request ids on a running server."""

from __future__ import annotations

import httpx

from tests.conftest import LiveServer


async def test_healthz_reports_database_and_bus(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        response = await http.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True, "embedded": False}
    assert body["bus"]["ok"] is True and body["bus"]["kind"] == "memory"


async def test_healthz_degrades_when_the_database_is_gone(live_server: LiveServer) -> None:
    await live_server.app.state.pool.close()
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        response = await http.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"]["ok"] is False


async def test_request_id_is_echoed_or_made(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        given = await http.get("/healthz", headers={"x-request-id": "race-day-42"})
        made = await http.get("/healthz")
        hostile = await http.get("/healthz", headers={"x-request-id": "bad id\twith spaces"})
    assert given.headers["x-request-id"] == "race-day-42"
    assert len(made.headers["x-request-id"]) == 16
    assert hostile.headers["x-request-id"] != "bad id\twith spaces"


async def test_metrics_count_requests_in_prometheus_format(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        for _ in range(3):
            await http.get("/healthz")
        await http.get("/api/auth/me")
        text = (await http.get("/metrics")).text
    assert 'trackside_http_requests_total{method="GET",route="/healthz",status="200"} 3.0' in text
    assert 'trackside_http_requests_total{method="GET",route="/api/auth/me",status="401"} 1.0' in text
    assert "trackside_db_pool_connections" in text
    assert "trackside_bus_published_total" in text
