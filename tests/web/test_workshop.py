"""The model workshop in Chromium against a server that runs real training and evaluation jobs:
import a broken folder (each error at its file), then a good one; a reward function with an error
shown at its line, fixed; a short training whose reward graph receives points without a reload;
Stop; evaluate and play the video; download the model folder and read the archive. Also API
tokens: create (shown once), revoke."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Locator, Page, expect

from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.helpers import make_user
from tests.models.builders import write_trackside_folder
from tests.web.conftest import screenshot
from tests.web.helpers import sign_in

pytestmark = pytest.mark.browser

BROKEN_REWARD = "import os\n\ndef reward_function(params):\n    return 1.0\n"
FIXED_REWARD = "def reward_function(params):\n    return 1.0 if params['all_wheels_on_track'] else 1e-3\n"
# A loaded 2-core machine: an iteration of 5 episodes may take a while.
ITERATION_TIMEOUT_MS = 180_000


@pytest.fixture
async def job_server(settings: Settings) -> AsyncIterator[LiveServer]:
    """A server that runs job workers (training and evaluation processes), as in production."""
    server = LiveServer(replace(settings, run_workers=True), bus_prefix=f"test-{uuid.uuid4().hex[:8]}:")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def broken_folder(root: Path) -> Path:
    folder = write_trackside_folder(root / "broken-model")
    (folder / "model_metadata.json").write_text('{"action_space": [')
    (folder / "hyperparameters.json").write_text(json.dumps({"batch_size": 100, "lr": 0.0003}))
    (folder / "reward_function.py").write_text("def reward_function(params:\n")
    return folder


# The page's policy forbids eval, so waits run as functions (page.evaluate) that await events.
POINTS_ABOVE = """(el, n) => new Promise((resolve) => {
  const check = () => {
    if (Number(el.dataset.points) > n) { observer.disconnect(); resolve(Number(el.dataset.points)); }
  };
  const observer = new MutationObserver(check);
  observer.observe(el, { attributes: true, attributeFilter: ["data-points"] });
  check();
})"""
VIDEO_PLAYS = """(v) => new Promise((resolve, reject) => {
  const done = () => {
    if (v.videoWidth > 0 && v.currentTime > 0) resolve({ width: v.videoWidth, time: v.currentTime });
  };
  v.addEventListener("timeupdate", done);
  v.addEventListener("error", () => reject(new Error("video error " + (v.error && v.error.code))));
  v.play().catch(reject);
  done();
})"""


async def points_above(graph: Locator, count: int) -> None:
    async with asyncio.timeout(ITERATION_TIMEOUT_MS / 1000):
        await graph.evaluate(POINTS_ABOVE, count)


async def replace_reward(page: Page, source: str) -> None:
    editor = page.get_by_role("textbox", name="Reward function")
    await editor.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    # insert_text: no key events, so the editor's auto-indent and bracket closing stay out of it
    await page.keyboard.insert_text(source)


async def import_folders(page: Page, tmp_path: Path) -> None:
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Your models").click()
    await expect(page.get_by_role("heading", name="Your models")).to_be_visible()
    await screenshot(page, "workshop-01-models-empty")
    await page.get_by_role("link", name="Import model").click()
    await page.get_by_label("Choose folder").set_input_files(broken_folder(tmp_path))
    await expect(page.get_by_label("Model name")).to_have_value("broken-model")
    await page.get_by_role("button", name="Import model").click()
    # Each error is on its file's row, with the seed's code and sentence.
    metadata_row = page.locator('tr[data-file="model_metadata.json"]')
    await expect(metadata_row.locator('[data-code="INVALID_JSON"]')).to_contain_text("A JSON file cannot be read.")
    hyper_row = page.locator('tr[data-file="hyperparameters.json"]')
    await expect(hyper_row.locator('[data-code="INVALID_HYPERPARAMETERS"]')).to_contain_text("batch_size = 100")
    await expect(hyper_row).to_contain_text("field batch_size")
    reward_row = page.locator('tr[data-file="reward_function.py"]')
    await expect(reward_row.locator('[data-code="INVALID_REWARD_FUNCTION"]')).to_contain_text("does not parse")
    await expect(page.get_by_role("alert").filter(has_text="The model was not imported")).to_be_visible()
    # Every file went up completely.
    bars = page.locator("progress")
    assert await bars.count() >= 5
    for value in await bars.evaluate_all("(els) => els.map((e) => e.value)"):
        assert value == 1
    await screenshot(page, "workshop-02-import-errors")

    good = write_trackside_folder(tmp_path / "good-model")
    await page.get_by_label("Choose folder").set_input_files(good)
    await expect(page.get_by_label("Model name")).to_have_value("good-model")
    await page.get_by_role("button", name="Import model").click()
    await expect(page.get_by_role("heading", name="good-model")).to_be_visible()
    await expect(page.get_by_role("region", name="Model details")).to_contain_text("Ready")
    await screenshot(page, "workshop-03-imported-model")


async def train_and_stop(page: Page) -> str:
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Your models").click()
    await page.get_by_role("link", name="Create model").click()
    await page.get_by_label("Model name").fill("workshop-car")
    await expect(page.get_by_role("img", name="Action space: steering angle and speed")).to_be_visible()
    # The track picture is drawn from the track's outline, fetched when the page opens.
    await expect(page.get_by_role("img", name="driven counterclockwise")).to_be_visible(timeout=30_000)
    # The car's limits are enforced in words.
    await page.get_by_label("Action 0 speed").fill("5")
    await expect(page.get_by_text("Action 0: speed must be between 0.1 and 4 m/s.")).to_be_visible()
    await page.get_by_label("Action 0 speed").fill("0.5")
    await expect(page.get_by_text("Action 0: speed must be between")).to_have_count(0)

    await replace_reward(page, BROKEN_REWARD)
    await page.get_by_role("button", name="Validate").click()
    problem = page.locator('.reward-problems li[data-code="IMPORT_ERROR"]')
    await expect(problem).to_contain_text("Line 1", timeout=60_000)
    await expect(problem).to_have_attribute("data-line", "1")
    await expect(page.locator(".cm-lint-marker-error")).to_have_count(1)
    await screenshot(page, "workshop-04-reward-error")
    await replace_reward(page, FIXED_REWARD)
    await page.get_by_role("button", name="Validate").click()
    await expect(page.get_by_text("Passed validation.")).to_be_visible(timeout=60_000)

    await page.locator("summary", has_text="Hyperparameters").click()
    await page.get_by_label("Gradient descent batch size").select_option("32")
    await page.get_by_label("Number of epochs").fill("3")
    await page.get_by_label("Number of experience episodes between each policy-updating iteration").fill("5")
    await page.locator("summary", has_text="Simulation on this server").click()
    await page.get_by_label("Simulation processes").fill("0")
    await page.get_by_label("Cars per process").fill("1")
    await page.get_by_label("Maximum time (minutes)").fill("10")
    await screenshot(page, "workshop-05-create-model")
    await page.get_by_role("button", name="Create model").click()

    await expect(page.get_by_role("heading", name="Training: workshop-car")).to_be_visible()
    job_url = page.url
    graph = page.get_by_role("figure", name="Reward graph")
    # Points arrive over the socket while the job runs; the page is never reloaded.
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
    await points_above(graph, 0)
    first = int(await graph.get_attribute("data-points") or 0)
    assert first >= 5  # one iteration: its five episodes
    await expect(page.locator("[data-status]")).to_have_attribute("data-status", "in_progress")
    await points_above(graph, first)
    assert navigations == [], navigations
    await expect(page.locator(".reward-graph canvas")).to_be_visible()
    await screenshot(page, "workshop-06-training-graph")

    await page.get_by_role("button", name="Stop training").click()
    status = page.locator("[data-status]")
    await expect(status).to_have_attribute("data-status", "completed", timeout=ITERATION_TIMEOUT_MS)
    await expect(status).to_contain_text("stopped early")
    await expect(page.get_by_role("button", name="Stop training")).to_have_count(0)
    return job_url


async def evaluate_and_export(page: Page) -> None:
    await page.get_by_role("link", name="Open the model: evaluate, clone, download").click()
    await expect(page.get_by_role("heading", name="workshop-car")).to_be_visible()
    await screenshot(page, "workshop-07-model-page")
    await page.get_by_label("Number of trials").fill("1")
    await page.get_by_role("button", name="Start evaluation").click()
    await expect(page.locator("[data-status]")).to_have_attribute("data-status", "completed", timeout=180_000)
    results = page.get_by_role("table", name="Evaluation results")
    await expect(results.locator("tbody tr")).to_have_count(1)
    await expect(results).to_contain_text("%")
    video = page.get_by_label("Evaluation video")
    async with asyncio.timeout(30):
        played = await video.evaluate(VIDEO_PLAYS)
    assert played["width"] > 0 and played["time"] > 0, played
    async with page.expect_download() as simtrace_download:
        await page.get_by_role("link", name="Download simtrace").click()
    simtrace = Path(await (await simtrace_download.value).path())
    header = (await asyncio.to_thread(simtrace.read_text)).splitlines()[0]
    assert header.startswith("episode,steps,X,Y"), header
    await screenshot(page, "workshop-08-evaluation")

    await page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="The model").click()
    async with page.expect_download(timeout=120_000) as download:
        await page.get_by_role("link", name="Download model folder (.tar.gz)").click()
    path = Path(await (await download.value).path())
    with tarfile.open(path, "r:gz") as archive:
        names = archive.getnames()
        assert "model_metadata.json" in [n.split("/", 1)[-1] if "/" in n else n for n in names] or any(
            n.endswith("model_metadata.json") for n in names
        ), names
        reward = next(n for n in names if n.endswith("reward_function.py"))
        source = archive.extractfile(reward)
        assert source is not None
        assert io.TextIOWrapper(source).read() == FIXED_REWARD
        assert any(n.endswith(".pt") for n in names), names


@pytest.mark.slow
async def test_import_train_graph_stop_evaluate_export(
    job_server: LiveServer, settings: Settings, new_context: Any, tmp_path: Path
) -> None:
    await make_user(settings, "racer", "racer@example.com", alias="speedy")
    context = await new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    page = await sign_in(context, job_server, "racer@example.com")
    await import_folders(page, tmp_path)
    await train_and_stop(page)
    await evaluate_and_export(page)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Your models").click()
    await expect(page.get_by_role("table", name="Models (2)")).to_be_visible()
    await screenshot(page, "workshop-09-models-list")
    # Delete asks once more, then the model is gone from the list.
    await page.get_by_role("link", name="good-model").first.click()
    await page.get_by_role("button", name="Delete model").click()
    await page.get_by_role("button", name="Delete model forever").click()
    await expect(page.get_by_role("table", name="Models (1)")).to_be_visible()
    await expect(page.get_by_role("link", name="good-model")).to_have_count(0)


async def test_api_tokens_are_shown_once_and_revoked(
    live_server: LiveServer, settings: Settings, new_context: Any
) -> None:
    await make_user(settings, "racer", "racer@example.com", alias="speedy")
    context = await new_context(viewport={"width": 1366, "height": 900})
    page = await sign_in(context, live_server, "racer@example.com")
    await page.get_by_role("link", name="Account").click()
    await page.get_by_label("Token name").fill("laptop-cli")
    await page.get_by_role("button", name="Create token").click()
    secret_field = page.get_by_role("textbox", name="New API token")
    secret = await secret_field.input_value()
    assert secret.startswith("tsk_")
    await expect(page.get_by_text("it is shown only once")).to_be_visible()
    await screenshot(page, "workshop-10-token-created")
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {secret}"})
        assert me.status_code == 200 and me.json()["email"] == "racer@example.com"
        await page.get_by_role("button", name="Done").click()
        await expect(secret_field).to_have_count(0)
        await page.reload()
        # Listed by name only: the secret is never shown again.
        tokens = page.get_by_role("table", name="Your API tokens")
        await expect(tokens).to_contain_text("laptop-cli")
        assert secret not in await page.content()
        await page.get_by_role("button", name="Revoke laptop-cli").click()
        await page.get_by_role("button", name="Revoke token").click()
        await expect(tokens).to_contain_text("Revoked")
        refused = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {secret}"})
        assert refused.status_code == 401
    await page.get_by_label("Car name").fill("garage-car")
    await page.get_by_role("button", name="Create car").click()
    car_secret = await page.get_by_role("textbox", name="New car token").input_value()
    assert car_secret.startswith("tsc_")
    await page.get_by_role("button", name="Done").click()
    await expect(page.get_by_role("region", name="Cars")).to_contain_text("garage-car (active)")
    await screenshot(page, "workshop-11-account")
    # Phone size: the same pages stay usable in one column.
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.get_by_role("link", name="Your models").click()
    await page.get_by_role("link", name="Create model").click()
    await expect(page.get_by_role("img", name="Action space: steering angle and speed")).to_be_visible()
    await screenshot(page, "workshop-12-create-model-phone")


async def test_organizer_invites_and_sets_the_signup_mode(
    live_server: LiveServer, settings: Settings, new_context: Any
) -> None:
    await make_user(settings, "organizer", "org@example.com", alias="org")
    context = await new_context(viewport={"width": 1366, "height": 900})
    page = await sign_in(context, live_server, "org@example.com")
    await page.get_by_role("link", name="Account").click()
    access = page.get_by_role("region", name="Server access")
    await access.get_by_label("Uses").fill("3")
    await access.get_by_role("button", name="Create invitation").click()
    link = await page.get_by_role("textbox", name="Sign-up link").input_value()
    assert link.startswith(f"{live_server.url}/signup?invitation=tsi_")
    await access.get_by_role("radio", name="Anyone can sign up").check()
    await expect(access).to_contain_text("Anyone can now sign up.")
    async with httpx.AsyncClient(base_url=live_server.url) as anonymous:
        signed_up = await anonymous.post(
            "/api/auth/signup", json={"email": "new@example.com", "password": "correct horse battery"}
        )
        assert signed_up.status_code in (200, 201), signed_up.text
    await access.get_by_role("radio", name="Sign-up by invitation only").check()
    await expect(access).to_contain_text("Sign-up now needs an invitation.")
    async with httpx.AsyncClient(base_url=live_server.url) as anonymous:
        refused = await anonymous.post(
            "/api/auth/signup", json={"email": "late@example.com", "password": "correct horse battery"}
        )
        assert refused.status_code == 403
    await screenshot(page, "workshop-13-account-organizer")
