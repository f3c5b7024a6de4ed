"""The car's link to the server: dial out over a websocket (works through NAT), register, obey.

One connection at a time; when it drops the car stops at once (``controller.link_lost``) and the
link dials again with exponential backoff (0.5 s doubling to 10 s, with jitter); a link silent
for 2 s without closing (a partition) is hung up and dialled again. After each
connect the car sends ``car_hello`` and waits for ``welcome``; then heartbeats and telemetry go out
at 10 Hz, and every server heartbeat feeds the dead-man (``car_client.controller``). Each command
gets ``ok`` or ``error`` with the command's ``req``; a frame that does not parse gets ``error``
with the protocol's code (too_large, bad_encoding, unknown_type, …).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from car_client import __version__
from car_client.calibration import CalibrationError
from car_client.controller import CarController, CommandError
from car_client.inference import DriveLoop, extract_bundle, open_model
from car_client.navigation import ModelError
from race_server import protocol as p

log = logging.getLogger("trackside.car")
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 10.0
WELCOME_TIMEOUT_S = 10.0
LINK_SILENT_S = 2.0  # the server sends 10 heartbeats a second; this much silence is a dead link


@dataclass
class LinkStatus:
    connected: bool = False
    car_id: int | None = None
    connects: int = 0
    rtt_ms: float | None = None
    last_error: str | None = None
    welcomed: asyncio.Event = field(default_factory=asyncio.Event)


class CarLink:
    def __init__(
        self,
        server: str,
        token: str,
        controller: CarController,
        drive: DriveLoop,
        state_dir: Path,
        *,
        video: bool = False,
    ) -> None:
        self.video = video
        self.http_base = server.rstrip("/")
        scheme = "wss" if self.http_base.startswith("https") else "ws"
        self.ws_url = scheme + self.http_base[self.http_base.index(":") :] + "/ws/car"
        self.token = token
        self.controller = controller
        self.drive = drive
        self.state_dir = state_dir
        self.status = LinkStatus()
        self._peer_t: tuple[float, float] | None = None  # server's t, when we received it
        self._tasks: set[asyncio.Task[None]] = set()

    # --- the reconnect loop ------------------------------------------------------------------------
    async def run(self) -> None:
        backoff = BACKOFF_MIN_S
        while True:
            try:
                async with connect(
                    self.ws_url,
                    additional_headers={"Authorization": f"Bearer {self.token}"},
                    max_size=p.MAX_MESSAGE_BYTES,
                    open_timeout=10,
                    ping_interval=None,  # our own 10 Hz heartbeats are the liveness check
                    close_timeout=1,  # a dead link does not answer a close either
                    compression=None,
                ) as ws:
                    self.status.connects += 1
                    await self._session(ws)
                    backoff = BACKOFF_MIN_S
            except asyncio.CancelledError:
                self.controller.link_lost("car client stopping")
                raise
            except (OSError, WebSocketException, TimeoutError, p.ProtocolError) as error:
                self.status.last_error = f"{type(error).__name__}: {error}"
                log.warning("link to %s lost: %s", self.ws_url, self.status.last_error)
            finally:
                self.status.connected = False
                self.status.welcomed.clear()
                self.controller.link_lost("link to the server closed")
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _session(self, ws: ClientConnection) -> None:
        c = self.controller
        snap = c.snapshot()
        hello = p.CarHello(
            req="hello",
            hardware=c.backend.hardware,
            software=f"trackside-car {__version__}",
            capabilities=list(c.backend.capabilities),
            calibration=p.CalibrationInfo.model_validate(c.calibration.to_dict()),
            models=self._installed_models(),
            mode=snap["mode"],
            armed=snap["armed"],
            estop=snap["estop"],
        )
        await ws.send(p.encode_car_frame(hello))
        welcome = p.parse_car_command(await asyncio.wait_for(ws.recv(), WELCOME_TIMEOUT_S))
        if not isinstance(welcome, p.Welcome):
            raise p.ProtocolError("unexpected", f"expected welcome, got {welcome.type}")
        self.status.connected = True
        self.status.car_id = welcome.car_id
        self.status.welcomed.set()
        log.info("linked to %s as car %s (%s)", self.http_base, welcome.car_id, welcome.name)
        c.dead_man_s = welcome.dead_man_ms / 1000.0
        sender = asyncio.create_task(self._send_loop(ws, 1.0 / welcome.heartbeat_hz))
        camera = await self._publish_camera() if self.video else None
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(ws.recv(), LINK_SILENT_S)
                except TimeoutError:
                    # A silent partition gives no close: the car hangs up and dials again itself.
                    raise ConnectionError(f"nothing from the server for {LINK_SILENT_S:g} s") from None
                await self._on_frame(ws, raw)
        finally:
            if camera is not None:
                await camera.close()
            sender.cancel()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(sender, *self._tasks, return_exceptions=True)

    async def _publish_camera(self) -> Any:
        """The camera over WebRTC; a failure is logged, never fatal (the car drives without video)."""
        from car_client.video import CameraPublisher

        publisher = CameraPublisher(self.http_base, self.token, self.controller.backend)
        try:
            await publisher.start()
        except Exception as error:  # aiortc, HTTP and SDP errors alike: driving matters more
            log.warning("camera not published: %s", error)
            await publisher.close()
            return None
        return publisher

    def _installed_models(self) -> list[str]:
        folder = self.state_dir / "models"
        return sorted(d.name[:64] for d in folder.iterdir() if d.is_dir())[:100] if folder.exists() else []

    # --- outgoing ------------------------------------------------------------------------------
    async def _send_loop(self, ws: ClientConnection, period: float) -> None:
        seq = 0
        while True:
            now = time.monotonic()
            echo_t = held = None
            if self._peer_t is not None:
                echo_t, received = self._peer_t
                held = (now - received) * 1000.0
            await ws.send(p.encode_car_frame(p.CarHeartbeat(seq=seq, t=now, echo_t=echo_t, held_ms=held)))
            await ws.send(p.encode_car_frame(self.telemetry()))
            seq += 1
            await asyncio.sleep(period)

    def telemetry(self) -> p.CarTelemetry:
        snap = self.controller.snapshot()
        backend = self.controller.backend
        speed = getattr(backend, "speed", None)
        return p.CarTelemetry(
            mode=snap["mode"],
            armed=snap["armed"],
            estop=snap["estop"],
            model=snap["model"],
            action=snap["action"],
            steering=min(max(snap["steering"], -1.0), 1.0),
            throttle=min(max(snap["throttle"], -1.0), 1.0),
            max_speed=snap["max_speed"],
            multiplier=snap["multiplier"],
            inference_fps=self.drive.fps,
            inference_ms=self.drive.latency_ms,
            battery_pct=backend.battery_pct(),
            rtt_ms=self.status.rtt_ms,
            speed_mps=speed() if callable(speed) else None,
        )

    # --- incoming ------------------------------------------------------------------------------
    async def _on_frame(self, ws: ClientConnection, raw: str | bytes) -> None:
        try:
            command = p.parse_car_command(raw)
        except p.ProtocolError as error:
            await ws.send(p.encode_car_frame(p.CarError(req=error.req, code=error.code, message=error.message)))
            return
        if isinstance(command, p.CarHeartbeat):
            self.controller.heartbeat()
            self._peer_t = (command.t, time.monotonic())
            if command.echo_t is not None:
                self.status.rtt_ms = max(0.0, (time.monotonic() - command.echo_t) * 1000.0 - (command.held_ms or 0.0))
            return
        if isinstance(command, p.Welcome):
            return
        if isinstance(command, p.LoadModel):
            # a download takes seconds: answered when done, heartbeats keep flowing meanwhile
            task = asyncio.create_task(self._reply(ws, command))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        await self._reply(ws, command)

    async def _reply(self, ws: ClientConnection, command: Any) -> None:
        try:
            data = await self.execute(command)
            reply: p.CarOk | p.CarError = p.CarOk(req=command.req, data=data)
        except CommandError as error:
            reply = p.CarError(req=command.req, code=error.code, message=error.message)
        await ws.send(p.encode_car_frame(reply))

    async def execute(self, command: Any) -> dict[str, Any] | None:
        c = self.controller
        match command:
            case p.SetMode(mode=mode):
                c.set_mode(mode)
            case p.Arm():
                c.arm()
            case p.Stop():
                c.stop()
            case p.EmergencyStop():
                c.emergency_stop()
            case p.ClearEmergencyStop():
                c.clear_emergency_stop()
            case p.SetMaxSpeed(value=value):
                c.set_max_speed(value)
            case p.SetSpeedMultiplier(multiplier=multiplier):
                c.set_multiplier(multiplier)
            case p.GetCalibration():
                return c.calibration.to_dict()
            case p.SetCalibration(calibration=calibration):
                return c.set_calibration(calibration.model_dump()).to_dict()
            case p.TailLight(colour=colour):
                c.backend.tail_light(colour)
            case p.Drive(angle=angle, throttle=throttle):
                c.drive(angle, throttle)
            case p.LoadModel():
                return await self._load_model(command)
            case _:
                raise CommandError("unknown_type", f"{command.type} is not a car command")
        return None

    async def _load_model(self, command: p.LoadModel) -> dict[str, Any]:
        if self.controller.armed:
            raise CommandError("armed", "stop the car before loading another model")
        url = self.http_base + command.url
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})

        def fetch_and_open() -> Any:
            with urllib.request.urlopen(request, timeout=60) as response:
                data = response.read()
            folder = self.state_dir / "models" / f"{command.model_id}-{command.sha256[:12]}"
            extract_bundle(data, command.sha256, folder)
            model = open_model(folder, command.name, command.model_id, command.sha256)
            if model.channels == 2 and "stereo" not in self.controller.backend.capabilities:
                raise ModelError("the model needs STEREO_CAMERAS; this car has one camera")
            return model

        try:
            model = await asyncio.to_thread(fetch_and_open)
        except urllib.error.HTTPError as error:
            raise CommandError("download_failed", f"GET {command.url}: HTTP {error.code}") from None
        except (urllib.error.URLError, OSError) as error:
            raise CommandError("download_failed", f"GET {command.url}: {error}") from None
        except (ModelError, CalibrationError) as error:
            raise CommandError("bad_model", str(error)) from None
        self.controller.set_model(model)
        return {"model": model.name, "sha256": model.sha256, "action_space": model.space.kind}
