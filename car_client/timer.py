"""``trackside timer``: the automatic lap timer at the finish line.

Line sensors (break-beam or reflective) on GPIO lines, read through Linux sysfs GPIO with edge
interrupts (``poll`` on the value file), pins configurable, active-low or active-high. Each
crossing is stamped locally (Unix time) the moment the edge arrives, debounced (2 s: one car, one
crossing), and sent to the server, which turns crossings into laps for the run on track:
``POST /api/races/{race}/timer/crossings {"crossings": [...], "sent_at": ...}`` with an organizer
API token. Sending retries until the server answers, so a network blip loses no crossing (the
stamps are kept, and the server corrects for the delay with ``sent_at``).

``SimulatedSensor`` stands in for the hardware: tests and demos feed it crossings (the simulated
car's start line), or it produces one every ``every_s`` seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import select
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from race_server.races.lap_sensor import DEBOUNCE_S, Debouncer

log = logging.getLogger("trackside.timer")
RETRY_S = 0.5


class TimerClient:
    """Debounces crossings and delivers them to the server in order, retrying until accepted."""

    def __init__(self, server: str, token: str, race_id: int, debounce_s: float = DEBOUNCE_S) -> None:
        self.url = f"{server.rstrip('/')}/api/races/{race_id}/timer/crossings"
        self.token = token
        self.debounce = Debouncer(debounce_s)
        self.pending: list[float] = []
        self.sent: list[float] = []
        self.last_answer: dict[str, object] | None = None
        self.last_error: str | None = None
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send_loop, name="timer-send", daemon=True)
        self._thread.start()

    def crossing(self, stamp: float) -> bool:
        with self._lock:
            if not self.debounce.accept(stamp):
                return False
            self.pending.append(stamp)
            self._lock.notify()
            return True

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify()
        self._thread.join(timeout=5)

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                while not self.pending and not self._stop.is_set():
                    self._lock.wait()
                batch = list(self.pending[:100])
            if not batch:
                continue
            body = json.dumps({"crossings": batch, "sent_at": time.time()}).encode()
            request = urllib.request.Request(
                self.url,
                data=body,
                method="POST",
                headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    self.last_answer = json.loads(response.read())
            except urllib.error.HTTPError as error:
                # The server answered: a crossing with no run on track is dropped, not retried.
                self.last_error = f"HTTP {error.code}: {error.read()[:200]!r}"
                log.warning("crossings refused: %s", self.last_error)
                if error.code >= 500:
                    self._stop.wait(RETRY_S)
                    continue
            except (urllib.error.URLError, OSError) as error:
                self.last_error = str(error)
                self._stop.wait(RETRY_S)
                continue
            with self._lock:
                del self.pending[: len(batch)]
                self.sent.extend(batch)


class GpioLineSensor:
    """One GPIO line through sysfs; ``run`` blocks, calling ``on_crossing(stamp)`` per edge."""

    def __init__(self, pin: int, *, active_low: bool = True, root: str = "/") -> None:
        base = Path(root) / "sys/class/gpio"
        self.dir = base / f"gpio{pin}"
        if not self.dir.exists():
            (base / "export").write_text(str(pin))
        (self.dir / "direction").write_text("in")
        (self.dir / "edge").write_text("falling" if active_low else "rising")
        self.pin = pin

    def run(self, timer: TimerClient, stop: threading.Event) -> None:
        with open(self.dir / "value", "rb", buffering=0) as handle:
            poller = select.poll()
            poller.register(handle, select.POLLPRI | select.POLLERR)
            handle.read()
            while not stop.is_set():
                if poller.poll(200):
                    stamp = time.time()
                    handle.seek(0)
                    handle.read()
                    if timer.crossing(stamp):
                        log.info("crossing on GPIO %s at %.3f", self.pin, stamp)


class SimulatedSensor:
    """Crossings on demand (``trigger``), or one every ``every_s`` seconds when run."""

    def __init__(self, every_s: float | None = None) -> None:
        self.every_s = every_s

    @staticmethod
    def trigger(timer: TimerClient, stamp: float | None = None) -> bool:
        return timer.crossing(time.time() if stamp is None else stamp)

    def run(self, timer: TimerClient, stop: threading.Event) -> None:
        while self.every_s is not None and not stop.wait(self.every_s):
            self.trigger(timer)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="trackside timer", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--server", required=True, help="the server's base URL")
    ap.add_argument("--token", default=os.environ.get("TRACKSIDE_TOKEN"), help="an organizer API token")
    ap.add_argument("--race", type=int, required=True, help="the race id")
    ap.add_argument("--pins", default="17", help="GPIO line(s) of the sensors, comma-separated")
    ap.add_argument("--active-high", action="store_true", help="sensors pull the line high on a crossing")
    ap.add_argument("--debounce", type=float, default=DEBOUNCE_S, help="seconds one crossing lasts")
    ap.add_argument("--gpio-root", default="/", help="prefix of /sys (tests)")
    ap.add_argument("--simulated", type=float, default=None, metavar="SECONDS",
                    help="no hardware: a simulated sensor crossing every SECONDS")  # fmt: skip
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.token:
        print("error: --token (or TRACKSIDE_TOKEN) is required", flush=True)
        return 2
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    timer = TimerClient(args.server, args.token, args.race, args.debounce)
    stop = threading.Event()
    sensors: list[GpioLineSensor | SimulatedSensor]
    if args.simulated is not None:
        sensors = [SimulatedSensor(args.simulated)]
    else:
        try:
            sensors = [GpioLineSensor(int(pin), active_low=not args.active_high, root=args.gpio_root)
                       for pin in args.pins.split(",")]  # fmt: skip
        except (OSError, ValueError) as error:
            print(f"error: cannot open the GPIO sensors ({error})", flush=True)
            return 1
    threads = [threading.Thread(target=s.run, args=(timer, stop), daemon=True) for s in sensors]
    for thread in threads:
        thread.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        timer.close()
    return 0
