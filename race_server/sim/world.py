"""The physics object: one car (and object slots) in MuJoCo, with named accessors.

``World.step(steering_deg, speed)`` advances one control step (1/``control_hz`` s) in
``substeps`` MuJoCo steps. Poses are planar (x, y, yaw); the car origin is the centre of its
footprint and the DeepRacer reference point is ``REFERENCE_OFFSET`` metres ahead of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import mujoco
import numpy as np
from numpy.typing import NDArray

from race_server.sim.car import WHEEL_NAMES, CarSpec, ObjectSlot, build_model

REFERENCE_OFFSET = 0.14  # metres ahead of the car origin: x, y and progress use this point


class BoxLike(Protocol):
    """The fields of an object footprint the world needs (owner C's ``Box``)."""

    @property
    def x(self) -> float: ...
    @property
    def y(self) -> float: ...
    @property
    def yaw(self) -> float: ...
    @property
    def length(self) -> float: ...
    @property
    def width(self) -> float: ...
    @property
    def height(self) -> float: ...


class World:
    """MuJoCo car + object slots. Not thread-safe; one per env."""

    def __init__(
        self,
        spec: CarSpec | None = None,
        objects: Sequence[ObjectSlot] = (),
        *,
        control_hz: float = 15.0,
        substeps: int = 8,
    ) -> None:
        if control_hz <= 0 or substeps < 1:
            raise ValueError("control_hz must be > 0 and substeps >= 1")
        self.spec = spec or CarSpec()
        self.control_hz = float(control_hz)
        self.substeps = int(substeps)
        self.control_dt = 1.0 / self.control_hz
        self.objects = tuple(objects)
        self.model = build_model(self.spec, self.objects, self.control_dt / self.substeps)
        self.data = mujoco.MjData(self.model)
        m = self.model
        self._steer_qpos = np.array(
            [m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f"steer_{w}")] for w in ("fl", "fr")]
        )
        self._steer_ctrl = np.array(
            [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, f"steer_{w}") for w in ("fl", "fr")]
        )
        self._drive_ctrl = np.array(
            [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, f"drive_{w}") for w in WHEEL_NAMES]
        )
        self._chassis_geom = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "chassis")
        self._object_geoms = {
            mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"object_{i}"): i for i in range(len(self.objects))
        }
        s = self.spec
        self._wheel_offsets = np.array(
            [
                [s.front_axle, s.track / 2.0],
                [s.front_axle, -s.track / 2.0],
                [s.rear_axle, s.track / 2.0],
                [s.rear_axle, -s.track / 2.0],
            ]
        )
        self._max_steer = math.radians(s.max_steering_deg)
        self._max_omega = s.max_speed / s.wheel_radius
        self._paused = 0.0
        self._control_steps = 0
        self._pose: tuple[float, float, float] | None = None
        self.prev_reference: tuple[float, float] = (0.0, 0.0)
        self.reset(0.0, 0.0, 0.0)

    # ------------------------------------------------------------------ control
    def reset(self, x: float, y: float, yaw: float) -> None:
        """Place the car at rest; sim time restarts at 0."""
        mujoco.mj_resetData(self.model, self.data)
        self._paused = 0.0
        self._control_steps = 0
        self.place(x, y, yaw)

    def place(self, x: float, y: float, yaw: float) -> None:
        """Re-place the car at rest (penalty resets); sim time continues."""
        d = self.data
        d.qpos[:] = self.model.qpos0
        d.qvel[:] = 0.0
        d.act[:] = 0.0
        d.ctrl[:] = 0.0
        d.qacc_warmstart[:] = 0.0
        d.qpos[0:3] = (x, y, self.spec.wheel_radius)
        d.qpos[3:7] = (math.cos(yaw / 2.0), 0.0, 0.0, math.sin(yaw / 2.0))
        mujoco.mj_forward(self.model, d)
        self._pose = None
        self.prev_reference = self.reference_point()

    def pause(self, seconds: float) -> None:
        """Hold the car still for ``seconds`` of sim time (a penalty); physics does not run."""
        self._paused += float(seconds)

    def set_objects(self, boxes: Sequence[BoxLike]) -> None:
        """Move the object slots to ``boxes`` (same count and order as the slots)."""
        d = self.data
        for i, b in enumerate(boxes):
            d.mocap_pos[i, 0] = b.x
            d.mocap_pos[i, 1] = b.y
            d.mocap_pos[i, 2] = b.height / 2.0
            d.mocap_quat[i, 0] = math.cos(b.yaw / 2.0)
            d.mocap_quat[i, 3] = math.sin(b.yaw / 2.0)

    def step(self, steering_deg: float, speed: float, speed_at: Callable[[int], float] | None = None) -> None:
        """One control step: command steering (degrees, left positive) and wheel speed (m/s).

        ``speed_at(i)``, when given, is asked for the wheel speed before each later physics sub-step:
        a LIVE host paces the sub-steps in real time, so the racer's speed control reaches the wheels
        within one sub-step instead of waiting for the next control step."""
        self.prev_reference = self.reference_point()
        steer = min(max(math.radians(steering_deg), -self._max_steer), self._max_steer)
        d = self.data
        d.ctrl[self._steer_ctrl] = steer
        d.ctrl[self._drive_ctrl] = self._omega(speed)
        if speed_at is None:
            mujoco.mj_step(self.model, d, nstep=self.substeps)
        else:
            for substep in range(self.substeps):
                if substep:
                    d.ctrl[self._drive_ctrl] = self._omega(speed_at(substep))
                mujoco.mj_step(self.model, d)
        self._pose = None
        self._control_steps += 1

    def _omega(self, speed: float) -> float:
        return min(max(speed / self.spec.wheel_radius, -self._max_omega), self._max_omega)

    # ---------------------------------------------------------------- accessors
    @property
    def sim_time(self) -> float:
        """Seconds of simulated time since reset, penalty pauses included."""
        # counted in control steps: summing MuJoCo's timestep drifts (120 x 1/120 != 1.0)
        return self._control_steps * self.control_dt + self._paused

    def pose(self) -> tuple[float, float, float]:
        """(x, y, yaw) of the car origin; yaw in radians (-pi, pi]. Cached until the next step."""
        pose = self._pose
        if pose is None:
            q = self.data.qpos
            w, qx, qy, qz = float(q[3]), float(q[4]), float(q[5]), float(q[6])
            yaw = math.atan2(2.0 * (w * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz))
            pose = self._pose = (float(q[0]), float(q[1]), yaw)
        return pose

    @property
    def x(self) -> float:
        return self.pose()[0]

    @property
    def y(self) -> float:
        return self.pose()[1]

    @property
    def yaw(self) -> float:
        return self.pose()[2]

    @property
    def speed(self) -> float:
        """Measured forward speed (m/s, negative when rolling backwards)."""
        yaw = self.yaw
        v = self.data.qvel
        return float(v[0] * math.cos(yaw) + v[1] * math.sin(yaw))

    @property
    def lateral_speed(self) -> float:
        """Measured sideways speed (m/s, left positive): non-zero means the tyres slide."""
        yaw = self.yaw
        v = self.data.qvel
        return float(-v[0] * math.sin(yaw) + v[1] * math.cos(yaw))

    @property
    def yaw_rate(self) -> float:
        return float(self.data.qvel[5])

    @property
    def steering_angle(self) -> float:
        """Actual mean front-wheel steering angle in degrees (left positive)."""
        return math.degrees(float(self.data.qpos[self._steer_qpos].mean()))

    def reference_point(self) -> tuple[float, float]:
        x, y, yaw = self.pose()
        return x + REFERENCE_OFFSET * math.cos(yaw), y + REFERENCE_OFFSET * math.sin(yaw)

    def wheel_centres(self) -> NDArray[np.float64]:
        """(4, 2) wheel centres, order fl, fr, rl, rr (planar, from the chassis pose)."""
        x, y, yaw = self.pose()
        c, s = math.cos(yaw), math.sin(yaw)
        o = self._wheel_offsets
        out = np.empty((4, 2))
        out[:, 0] = x + c * o[:, 0] - s * o[:, 1]
        out[:, 1] = y + s * o[:, 0] + c * o[:, 1]
        return out

    def footprint(self) -> NDArray[np.float64]:
        """(4, 2) corners of the car footprint."""
        x, y, yaw = self.pose()
        return box_corners(x, y, yaw, self.spec.length, self.spec.width)

    def touching_objects(self) -> frozenset[int]:
        """Indices of the objects the chassis is in physical contact with."""
        d = self.data
        found: set[int] = set()
        ch = self._chassis_geom
        lookup = self._object_geoms
        for i in range(d.ncon):
            c = d.contact[i]
            if c.geom1 == ch and c.geom2 in lookup:
                found.add(lookup[c.geom2])
            elif c.geom2 == ch and c.geom1 in lookup:
                found.add(lookup[c.geom1])
        return frozenset(found)


def box_corners(x: float, y: float, yaw: float, length: float, width: float) -> NDArray[np.float64]:
    """(4, 2) corners of an oriented rectangle, counter-clockwise."""
    c, s = math.cos(yaw), math.sin(yaw)
    hl, hw = length / 2.0, width / 2.0
    local = np.array([[hl, hw], [-hl, hw], [-hl, -hw], [hl, -hw]])
    out = np.empty((4, 2))
    out[:, 0] = x + c * local[:, 0] - s * local[:, 1]
    out[:, 1] = y + s * local[:, 0] + c * local[:, 1]
    return out
