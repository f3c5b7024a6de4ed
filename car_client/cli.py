"""``trackside car`` (or ``python -m car_client``): run the car client until Ctrl-C / SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Link this car to a Trackside server: it dials out (works behind NAT), registers, and then obeys the
server: mode, start/stop, latched emergency stop, max speed, the racer's speed control, model
loading (the car bundle, sha256-checked), calibration, tail light and manual driving. If the link
goes quiet for 300 ms the car goes to neutral throttle and disarms, and stays disarmed until it is
started again.

Install on a DeepRacer or a DIY car (Linux, Python 3.11+): copy the folders car_client/ and
race_server/ (only race_server/__init__.py, race_server/protocol.py and race_server/races/ are
used) to /opt/trackside, then
  python3 -m pip install websockets numpy onnxruntime msgpack pydantic av
(av only for the V4L2 camera). Start at boot with the systemd unit in docs/cars.md. Create the car
and its token on the server: POST /api/cars {"name": ...} (organizer or racer) returns the token.
"""


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="trackside car", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--server", required=True, help="the server's base URL, e.g. https://race.example.org")
    ap.add_argument(
        "--token",
        default=os.environ.get("TRACKSIDE_CAR_TOKEN"),
        help="the car token from POST /api/cars (or env TRACKSIDE_CAR_TOKEN)",
    )
    ap.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("TRACKSIDE_CAR_STATE", "/var/lib/trackside-car")),
        help="models, calibration and the latched e-stop are kept here",
    )
    ap.add_argument(
        "--calibration",
        type=Path,
        default=None,
        help="calibration file to start from (a stock /opt/aws/deepracer/calibration.json works); "
        "default: STATE_DIR/calibration.json, else the stock car's defaults",
    )
    ap.add_argument(
        "--backend",
        choices=("pwm", "simulated"),
        default="pwm",
        help="pwm: sysfs PWM + V4L2 camera (a real car); simulated: a car in Trackside's simulator",
    )
    hw = ap.add_argument_group("pwm backend (defaults: the stock DeepRacer)")
    hw.add_argument("--pwm-chip", type=int, default=0, help="/sys/class/pwm/pwmchipN")
    hw.add_argument("--throttle-channel", type=int, default=0)
    hw.add_argument("--steering-channel", type=int, default=1)
    hw.add_argument("--enable-gpio", type=int, default=436, help="GPIO that enables the servo rail (-1: none)")
    hw.add_argument("--led-channels", default="2,3,4", help="tail-light red,green,blue PWM channels ('' for none)")
    hw.add_argument("--camera", default="/dev/video0", help="V4L2 device ('' for none)")
    hw.add_argument("--battery-file", default=None, help="a file holding the battery percentage, if the car has one")
    sim = ap.add_argument_group("simulated backend")
    sim.add_argument("--track", default="Bowtie_track", help="route id of the simulated track")
    sim.add_argument("--top-speed", type=float, default=2.0, help="m/s at full throttle")
    ap.add_argument(
        "--video",
        action="store_true",
        help="publish the camera to the server over WebRTC (needs aiortc; costs CPU, so off by default)",
    )
    ap.add_argument("--log-level", default="info")
    return ap


def backend_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.backend == "simulated":
        return {"route_id": args.track, "top_speed": args.top_speed}
    leds = tuple(int(c) for c in args.led_channels.split(",")) if args.led_channels else None
    return {
        "chip": args.pwm_chip,
        "throttle_channel": args.throttle_channel,
        "steering_channel": args.steering_channel,
        "enable_gpio": None if args.enable_gpio < 0 else args.enable_gpio,
        "led_channels": leds,
        "camera": args.camera or None,
        "battery_path": args.battery_file,
    }


async def run_car(args: argparse.Namespace) -> None:
    from car_client.backends import open_backend
    from car_client.calibration import load_calibration
    from car_client.controller import CarController
    from car_client.inference import DriveLoop
    from car_client.link import CarLink

    state_dir: Path = args.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, at start-up)
    calibration = load_calibration(args.calibration or state_dir / "calibration.json")
    backend = open_backend(args.backend, backend_options(args))
    controller = CarController(backend, calibration, state_dir)
    drive = DriveLoop(controller)
    drive.start()
    link = CarLink(args.server, args.token, controller, drive, state_dir, video=args.video)
    task = asyncio.create_task(link.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        drive.close()
        controller.close()
        backend.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.token:
        print("error: --token (or TRACKSIDE_CAR_TOKEN) is required", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from car_client.backends import BackendError
    from car_client.calibration import CalibrationError

    try:
        asyncio.run(run_car(args))
    except (BackendError, CalibrationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
