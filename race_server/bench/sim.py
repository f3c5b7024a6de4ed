"""``trackside bench sim``: simulator speed figures (env steps/s, physics steps/s, camera fps, RSS)."""

from __future__ import annotations

import resource
import sys
import time
from typing import Any

from race_server.sim.env import DeepRacerEnv
from race_server.sim.episode import Simulation
from race_server.sim.metadata import default_model_metadata
from race_server.sim.params import fresh_params
from race_server.sim.pursuit import pure_pursuit
from race_server.sim.world import World


def _discrete_pursuit_index(env: DeepRacerEnv) -> int:
    """Nearest action of the env's discrete space to the pure-pursuit command."""
    world = env.sim.world
    assert world is not None
    steer, _ = pure_pursuit(env.sim.track, world.x, world.y, world.yaw, 1.0)
    actions = env.model.actions
    return min(range(len(actions)), key=lambda i: (abs(actions[i].steering_angle - steer), -actions[i].speed))


def _env_rate(env: DeepRacerEnv, seconds: float) -> float:
    """Env steps per second; only ``step``/``reset`` are timed, not the driver choosing actions."""
    env.reset(seed=0)
    steps = 0
    spent = 0.0
    clock = time.perf_counter
    deadline = clock() + seconds
    while clock() < deadline:
        for _ in range(50):
            action = _discrete_pursuit_index(env)
            t0 = clock()
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
            spent += clock() - t0
            steps += 1
    return steps / spent


def _physics_rate(seconds: float) -> float:
    world = World()
    world.reset(0.0, 0.0, 0.0)
    steps = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for i in range(100):
            world.step(10.0 if i % 40 < 20 else -10.0, 1.5)
        steps += 100 * world.substeps
        world.reset(0.0, 0.0, 0.0)
    return steps / (time.perf_counter() - start)


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is kilobytes on Linux, bytes on macOS
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def run_sim_benchmark(seconds: float = 3.0) -> dict[str, float]:
    """Measure the simulator on this machine (one core): each figure runs for about ``seconds``."""
    from race_server.bench import camera

    per = max(seconds, 0.1) / 4.0
    camera_env = DeepRacerEnv()
    metadata: dict[str, Any] = default_model_metadata()
    metadata["sensor"] = ["STEREO_CAMERAS", "LIDAR"]
    stereo_env = DeepRacerEnv(metadata)
    env_rate = _env_rate(camera_env, per)
    stereo_rate = _env_rate(stereo_env, per)
    physics = _physics_rate(per)
    fps = float(camera.benchmark_camera(per))
    copy_us = _params_copy_us(camera_env)
    return {
        "env_steps_per_s": env_rate,
        "env_steps_per_s_lidar_stereo": stereo_rate,
        "physics_steps_per_s": physics,
        "camera_fps": fps,
        "peak_rss_mb": _peak_rss_mb(),
        "realtime_factor": env_rate / 15.0,
        "reward_params_copy_us": copy_us,
    }


def _params_copy_us(env: DeepRacerEnv, calls: int = 20_000) -> float:
    """Microseconds per reward call spent giving the function its own copy of the params."""
    params = env.reset(seed=0)[1]["params"]
    start = time.perf_counter()
    for _ in range(calls):
        fresh_params(params)
    return (time.perf_counter() - start) / calls * 1e6


def simulation_rate(route_id: str = "reinvent_base", seconds: float = 1.0) -> float:
    """Control steps per second of the sensorless core (physics + params + rules)."""
    sim = Simulation(route_id)
    sim.reset()
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        world = sim.world
        assert world is not None
        out = sim.step(*pure_pursuit(sim.track, world.x, world.y, world.yaw, 1.5))
        steps += 1
        if out.terminated or out.truncated:
            sim.reset()
    return steps / (time.perf_counter() - start)
