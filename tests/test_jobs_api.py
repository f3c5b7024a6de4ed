"""/api/jobs over real HTTP on real PostgreSQL: submit, validation, visibility, stop, and one real run."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import pytest

from race_server import auth
from race_server.db import users
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.trainer.test_service import TINY

PASSWORD = "correct horse battery"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # permission and validation tests need no job processes; the end-to-end test starts its own server
    return replace(settings, run_workers=False)


async def make_user(settings: Settings, role: str, email: str) -> None:
    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url)
    try:
        await users.create(conn, role=role, email=email, password_hash=await auth.hash_password(PASSWORD), alias=None)
    finally:
        await conn.close()


@asynccontextmanager
async def login(server: LiveServer, email: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        yield client


@pytest.fixture
async def people(settings: Settings, live_server: LiveServer) -> None:
    await make_user(settings, "racer", "alice@example.com")
    await make_user(settings, "racer", "bob@example.com")
    await make_user(settings, "organizer", "org@example.com")


@pytest.mark.usefixtures("people")
async def test_owner_sees_own_jobs_another_racer_and_an_organizer_get_404(live_server: LiveServer) -> None:
    async with (
        login(live_server, "alice@example.com") as alice,
        login(live_server, "bob@example.com") as bob,
        login(live_server, "org@example.com") as org,
    ):
        created = await alice.post("/api/jobs", json=TINY)
        assert created.status_code == 201, created.text
        job = created.json()
        assert job["status"] == "queued" and job["kind"] == "training" and job["name"] == "tiny"
        assert job["config"]["hyperparameters"]["num_episodes_between_training"] == 5
        assert job["config"]["stop"] == {"max_minutes": 60.0, "max_episodes": 2}
        bobs = await bob.post("/api/jobs", json={**TINY, "name": "bobs"})
        assert bobs.status_code == 201

        mine = (await alice.get("/api/jobs")).json()["jobs"]
        assert [j["id"] for j in mine] == [job["id"]]
        assert (await bob.get(f"/api/jobs/{job['id']}")).status_code == 404
        assert (await bob.post(f"/api/jobs/{job['id']}/stop")).status_code == 404
        # Least privilege: an organizer sees only their own jobs too (docs/security.md).
        assert (await org.get("/api/jobs")).json()["jobs"] == []
        assert (await org.get(f"/api/jobs/{job['id']}")).status_code == 404
        assert (await org.post(f"/api/jobs/{job['id']}/stop")).status_code == 404
        detail = await alice.get(f"/api/jobs/{job['id']}")
        assert detail.status_code == 200 and detail.json()["progress_history"] == []

        stopped = await alice.post(f"/api/jobs/{job['id']}/stop")
        assert stopped.status_code == 200
        assert stopped.json()["status"] == "canceled"
        assert (await alice.get(f"/api/jobs/{job['id']}")).json()["status"] == "canceled"


@pytest.mark.usefixtures("people")
async def test_anonymous_callers_are_refused(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as anonymous:
        assert (await anonymous.get("/api/jobs")).status_code == 401
        assert (await anonymous.post("/api/jobs", json=TINY)).status_code == 401


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"hyperparameters": {"lr": 5}}, "hyperparameters.lr"),
    ({"hyperparameters": {"batch_size": 100}}, "hyperparameters.batch_size"),
    ({"reward_function": "def reward_function(params):\n    import os\n    return 1.0\n"}, "reward_function"),
    ({"reward_function": "def reward_function(:\n"}, "reward_function"),
    ({"model_metadata": {"action_space": [{"steering_angle": 0, "speed": 1}]}}, "model_metadata"),
    ({"world": {"track_id": "no_such_track"}}, "world"),
    ({"world": {"direction": "sideways"}}, "world"),
    ({"stop": {"max_minutes": -1}}, "stop"),
    ({"options": {"workers": 99}}, "options.workers"),
    ({"name": "no spaces allowed"}, "name"),
    ({"kind": "racing"}, "kind"),
    ({"surprise": 1}, "surprise"),
    ({"clone_from_job_id": 999999}, "clone_from_job_id"),
]


async def test_an_invalid_config_is_rejected_with_the_field_named(live_server: LiveServer, settings: Settings) -> None:
    await make_user(settings, "racer", "alice@example.com")
    async with login(live_server, "alice@example.com") as alice:
        for change, field in INVALID:
            response = await alice.post("/api/jobs", json={**TINY, **change})
            assert response.status_code == 422, (change, response.text)
            body = response.json()
            assert body["field"] == field and body["code"] == "invalid", (change, body)
            assert body["error"].startswith(field), body
        assert (await alice.get("/api/jobs")).json()["jobs"] == []


@pytest.mark.usefixtures("people")
async def test_an_evaluation_needs_a_completed_training_job_of_ones_own(live_server: LiveServer) -> None:
    async with login(live_server, "alice@example.com") as alice, login(live_server, "bob@example.com") as bob:
        queued = (await alice.post("/api/jobs", json=TINY)).json()
        evaluation = {"kind": "evaluation", "model_job_id": queued["id"], "evaluation": {"trials": 1}}
        not_done = await alice.post("/api/jobs", json=evaluation)
        assert not_done.status_code == 422 and not_done.json()["field"] == "model_job_id"
        assert "queued training job" in not_done.json()["error"]
        not_hers = await bob.post("/api/jobs", json=evaluation)
        assert not_hers.status_code == 422 and "does not exist" in not_hers.json()["error"]
        bad_trials = await alice.post("/api/jobs", json={**evaluation, "evaluation": {"trials": 0}})
        assert bad_trials.status_code == 422 and bad_trials.json()["field"] == "evaluation.trials"


@pytest.mark.usefixtures("people")
async def test_an_evaluation_of_a_stored_model_needs_a_ready_model_of_ones_own(live_server: LiveServer) -> None:
    async with login(live_server, "alice@example.com") as alice, login(live_server, "bob@example.com") as bob:
        nothing = await alice.post("/api/jobs", json={"kind": "evaluation"})
        assert nothing.status_code == 422 and nothing.json()["field"] == "model_job_id"
        assert "model_id" in nothing.json()["error"]
        both = await alice.post("/api/jobs", json={"kind": "evaluation", "model_job_id": 1, "model_id": 1})
        assert both.status_code == 422 and both.json()["field"] == "model_id"
        missing = await alice.post("/api/jobs", json={"kind": "evaluation", "model_id": 999_999})
        assert missing.status_code == 422 and missing.json()["field"] == "model_id"
        assert "does not exist" in missing.json()["error"]
        assert (await alice.get("/api/jobs")).json()["jobs"] == []
        assert (await bob.get("/api/jobs")).json()["jobs"] == []


async def test_a_job_submitted_over_http_runs_on_the_servers_worker_and_its_model_is_evaluated(
    settings: Settings,
) -> None:
    server = LiveServer(replace(settings, run_workers=True), bus_prefix=f"test-{uuid.uuid4().hex[:8]}:")
    await server.start()
    try:
        await make_user(settings, "racer", "alice@example.com")
        async with login(server, "alice@example.com") as alice:
            job = (await alice.post("/api/jobs", json=TINY)).json()
            trained = await until_finished(alice, job["id"])
            assert trained["status"] == "completed", trained
            assert [p["iteration"] for p in trained["progress_history"]] == [1]
            assert trained["progress_history"][0]["episodes"] == 2

            # The trained model is in the store, ready, hers, and the job names it.
            models = (await alice.get("/api/models")).json()["models"]
            assert [(m["id"], m["name"], m["status"], m["source"]) for m in models] == [
                (trained["model_id"], "tiny", "ready", "training")
            ]
            await make_user(settings, "racer", "bob@example.com")
            async with login(server, "bob@example.com") as bob:
                someone_elses = {"kind": "evaluation", "model_id": trained["model_id"]}
                refused = await bob.post("/api/jobs", json=someone_elses)
                assert refused.status_code == 422 and refused.json()["field"] == "model_id"
                assert (await bob.get("/api/models")).json()["models"] == []

            evaluation = {
                "kind": "evaluation",
                "model_job_id": job["id"],
                "evaluation": {"trials": 1, "max_steps": 300},
            }
            created = await alice.post("/api/jobs", json=evaluation)
            assert created.status_code == 201, created.text
            evaluated = await until_finished(alice, created.json()["id"])
            assert evaluated["status"] == "completed", evaluated
            assert len(evaluated["result"]["trials"]) == 1
            assert 0.0 <= evaluated["result"]["trials"][0]["completion_percentage"] <= 100.0

            # The same model, taken from the store rather than from the job, evaluates the same way.
            from_store = {**evaluation, "model_job_id": None, "model_id": trained["model_id"]}
            created_from_store = await alice.post("/api/jobs", json=from_store)
            assert created_from_store.status_code == 201, created_from_store.text
            assert created_from_store.json()["config"]["model_id"] == trained["model_id"]
            stored = await until_finished(alice, created_from_store.json()["id"])
            assert stored["status"] == "completed", stored
            assert stored["result"]["trials"] == evaluated["result"]["trials"]
    finally:
        await server.stop()
    metrics = (
        settings.data_dir / "jobs" / str(created.json()["id"]) / "metrics" / "evaluation" / "evaluation-metrics.json"
    )
    assert metrics.exists()
    # and the evaluation simtrace, in DeepRacer-for-Cloud's layout (deepracer-utils reads the job folder)
    assert len(list(metrics.parents[2].glob("evaluation-*/evaluation-simtrace/0-iteration.csv"))) == 1
    assert list((settings.data_dir / "staging").iterdir()) == [], "the stored model written out for it is gone"


async def until_finished(client: httpx.AsyncClient, job_id: int) -> dict[str, Any]:
    """HTTP has no push here: poll the job, bounded by a deadline."""
    async with asyncio.timeout(120):
        while True:
            job: dict[str, Any] = (await client.get(f"/api/jobs/{job_id}")).json()
            if job["status"] in ("completed", "failed", "canceled"):
                return job
            await asyncio.sleep(0.2)
