"""``python -m car_client.bench [--model FOLDER] [--seconds S]``: what a car can do, as one JSON object.

- ``inference``: onnxruntime latency (p50/p95 ms) and the rate it could sustain, on the car's own
  CPU, for the model in FOLDER (model_metadata.json + model.onnx, e.g. an extracted car bundle);
  skipped without ``--model``.
- ``dead_man``: how long after the last heartbeat the watchdog put the car in neutral (p50/p99/max
  ms over ``--trips`` trips; the contract is 300 ms), on a bench backend (no servos move).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from car_client.calibration import STOCK
from car_client.controller import CarController


class _Bench:
    hardware = "bench"
    capabilities: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.neutral_at: float | None = None

    def apply(self, steering: float, throttle: float) -> None:
        self.neutral_at = None

    def neutral(self) -> None:
        self.neutral_at = time.monotonic()

    def set_calibration(self, calibration: Any) -> None:
        pass

    def frame(self) -> None:
        return None

    def battery_pct(self) -> float | None:
        return None

    def tail_light(self, colour: str) -> None:
        pass

    def close(self) -> None:
        pass


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench_inference(folder: Path, seconds: float) -> dict[str, Any]:
    from car_client.inference import open_model

    model = open_model(folder, folder.name, 1, "0" * 64)
    pixels = np.random.default_rng(0).integers(0, 255, (1, 120, 160, model.channels)).astype(np.float32)
    latencies: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        model.session.run(None, {model.input_name: pixels})
        latencies.append((time.perf_counter() - started) * 1000.0)
    p50 = statistics.median(latencies)
    return {"runs": len(latencies), "latency_ms_p50": round(p50, 2),
            "latency_ms_p95": round(_percentile(latencies, 95), 2), "max_hz": round(1000.0 / p50, 1),
            "meets_15_hz": p50 < 1000.0 / 15}  # fmt: skip


def bench_dead_man(trips: int) -> dict[str, Any]:
    backend = _Bench()
    with tempfile.TemporaryDirectory() as state:
        controller = CarController(backend, STOCK, Path(state))
        delays: list[float] = []
        try:
            controller.set_mode("manual")
            for _ in range(trips):
                controller.heartbeat()
                controller.arm()
                controller.drive(0.0, 0.5)
                last = time.monotonic()
                controller.heartbeat()
                while controller.armed:
                    time.sleep(0.005)
                assert backend.neutral_at is not None
                delays.append((backend.neutral_at - last) * 1000.0)
        finally:
            controller.close()
    return {"trips": trips, "contract_ms": round(controller.dead_man_s * 1000),
            "trip_ms_p50": round(statistics.median(delays), 1), "trip_ms_p99": round(_percentile(delays, 99), 1),
            "trip_ms_max": round(max(delays), 1)}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m car_client.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--model", type=Path, default=None, help="a folder with model_metadata.json and model.onnx")
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds of inference measured")
    ap.add_argument("--trips", type=int, default=10, help="dead-man trips measured")
    args = ap.parse_args(argv)
    result: dict[str, Any] = {"dead_man": bench_dead_man(args.trips)}
    if args.model is not None:
        result["inference"] = bench_inference(args.model, args.seconds)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
