"""Start and stop the races' long-lived parts inside the app's lifespan: the LIVE queue service,
the classic evaluator, the websocket feeds and (``serve --demo``) the demo races.

``app.state.race_options`` may be set before start-up (tests, the demo, the benchmark); the
settings (``TRACKSIDE_RACE_REALTIME=0``, used by the crash-recovery test's server subprocess;
``TRACKSIDE_RACE_COUNTDOWN_S``; ``TRACKSIDE_RACE_SLOT_S``) override them where given.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from starlette.applications import Starlette

from race_server.api.race_ws import Feeds
from race_server.queue.evaluator import MAX_EVALUATION_S, Evaluator
from race_server.queue.service import COUNTDOWN_S, HostFactory, QueueService, default_host_factory
from race_server.settings import Settings
from race_server.stream.filmed_host import filmed_host_factory

log = logging.getLogger("trackside.races")


@dataclass(frozen=True)
class RaceOptions:
    realtime: bool = True
    countdown_s: int = COUNTDOWN_S
    evaluation_max_s: float = MAX_EVALUATION_S
    host_factory: HostFactory | None = None
    demo: bool = False
    time_per_racer_s: float | None = None  # overrides every race's slot (tests, the benchmark)


def options_with_overrides(base: RaceOptions, settings: Settings) -> RaceOptions:
    """The settings' TRACKSIDE_RACE_* overrides, where given, win over the app's options."""
    return replace(
        base,
        realtime=base.realtime if settings.race_realtime is None else settings.race_realtime,
        countdown_s=base.countdown_s if settings.race_countdown_s is None else settings.race_countdown_s,
        time_per_racer_s=base.time_per_racer_s if settings.race_slot_s is None else settings.race_slot_s,
    )


async def start_races(app: Starlette, stack: AsyncExitStack, data_dir: Path) -> None:
    state = app.state
    options = options_with_overrides(getattr(state, "race_options", RaceOptions()), state.settings)
    feeds = Feeds(state.bus, state.pool)
    stack.push_async_callback(feeds.close)
    state.race_feeds = feeds
    models = getattr(state, "model_store", None)
    video = getattr(state, "video", None)
    evaluator = Evaluator(state.pool, state.bus, data_dir, max_s=options.evaluation_max_s, models=models, video=video)
    await evaluator.start()
    stack.push_async_callback(evaluator.close)
    state.race_evaluator = evaluator
    virtual = options.host_factory or default_host_factory(options.realtime)
    # A race with a car assigned in the fleet runs on the physical track (race_server.fleet).
    from race_server.api.car_ws import car_links, car_video
    from race_server.fleet.host_factory import FleetHostFactory

    links = car_links(state)
    stack.push_async_callback(links.close)
    stack.push_async_callback(car_video(state).close)
    state.fleet_hosts = FleetHostFactory(state.pool, links, data_dir, virtual)
    hosts: HostFactory = state.fleet_hosts
    if video is not None and video.settings.enabled:  # the race's video follows its simulator or its car
        hosts = filmed_host_factory(hosts, video, state.bus, state.pool, cameras=car_video(state))
    queue = QueueService(
        state.pool,
        state.bus,
        data_dir,
        host_factory=hosts,
        countdown_s=options.countdown_s,
        time_per_racer_s=options.time_per_racer_s,
        models=models,
    )
    state.race_queue = queue
    stack.push_async_callback(queue.close)
    await queue.start()
    if options.demo:
        from race_server.demo import DemoRunner

        demo = DemoRunner(state.pool, queue, evaluator)
        await demo.start()
        stack.push_async_callback(demo.close)
        state.race_demo = demo
