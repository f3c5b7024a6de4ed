"""The 1/18-scale car as a MuJoCo model (MJCF built in code).

The car is a free body with four sphere wheels (cheap sphere-plane contacts with Coulomb friction,
so it can skid), two steering knuckles driven by position servos behind a first-order filter (finite
steering rate, as a hobby servo) and four velocity-controlled wheel hinges with a torque limit
(finite acceleration, the DeepRacer simulator's ``speed / 0.035`` wheel velocity command).

Objects (obstacle boxes and bot cars) are mocap bodies holding box geoms: the layout changes every
episode and bots move every step, and mocap bodies let both happen without recompiling the model,
while contacts with the chassis stay physical.

Collision filtering keeps the contact count tiny: wheels touch only the ground, the chassis touches
only objects, objects touch nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco

# contype / conaffinity bits
_GROUND_BIT = 1
_OBJECT_BIT = 2

WHEEL_NAMES = ("fl", "fr", "rl", "rr")


@dataclass(frozen=True)
class CarSpec:
    """Physical car parameters (SI units). Defaults follow the DeepRacer car."""

    wheelbase: float = 0.164
    track: float = 0.16
    wheel_radius: float = 0.035
    mass: float = 1.5
    length: float = 0.324  # footprint used for crash tests
    width: float = 0.196
    chassis_height: float = 0.06
    max_steering_deg: float = 30.0
    steering_time_constant: float = 0.04  # s, servo command filter
    steering_kp: float = 2.0  # N m / rad
    steering_kv: float = 0.08  # N m s / rad
    wheel_kv: float = 0.05  # N m s / rad, wheel velocity servo gain
    wheel_torque: float = 0.06  # N m per wheel: ~4.5 m/s^2 with four driven wheels
    tyre_friction: float = 0.8  # sliding friction coefficient (grip limit ~ mu g)
    max_speed: float = 6.0  # m/s, command clamp (the 496-action fixture goes to 4+)

    @property
    def front_axle(self) -> float:
        """Front axle x in the car frame (origin = centre of the footprint)."""
        return self.wheelbase / 2.0

    @property
    def rear_axle(self) -> float:
        return -self.wheelbase / 2.0


@dataclass(frozen=True)
class ObjectSlot:
    """Size of one object's box geom (full extents, metres)."""

    length: float
    width: float
    height: float


def _wheel_body(name: str, x: float, y: float, spec: CarSpec, steered: bool, wheel_mass: float) -> str:
    wheel = (
        f'<body name="wheel_{name}">'
        f'<joint name="spin_{name}" type="hinge" axis="0 1 0" damping="1e-5" armature="1e-5"/>'
        f'<geom name="wheel_{name}" type="sphere" size="{spec.wheel_radius}" mass="{wheel_mass}" '
        f'contype="{_GROUND_BIT}" conaffinity="0" condim="3" '
        f'friction="{spec.tyre_friction} 0.005 0.0001"/>'
        "</body>"
    )
    if not steered:
        return f'<body name="hub_{name}" pos="{x} {y} 0">{wheel}</body>'
    limit = math.radians(spec.max_steering_deg) * 1.05
    return (
        f'<body name="hub_{name}" pos="{x} {y} 0">'
        f'<joint name="steer_{name}" type="hinge" axis="0 0 1" range="{-limit} {limit}" '
        'limited="true" armature="0.001" damping="0.001"/>'
        '<geom type="sphere" size="0.005" mass="0.02" contype="0" conaffinity="0"/>'
        f"{wheel}</body>"
    )


def build_mjcf(spec: CarSpec, objects: tuple[ObjectSlot, ...], timestep: float) -> str:
    """MJCF text of the car on a ground plane with ``objects`` mocap box slots."""
    wheel_mass = 0.05
    chassis_mass = spec.mass - 4 * wheel_mass - 2 * 0.02
    hx, hy, hz = spec.length / 2.0, spec.width / 2.0, spec.chassis_height / 2.0
    fa, ra, ht = spec.front_axle, spec.rear_axle, spec.track / 2.0
    wheels = (
        _wheel_body("fl", fa, ht, spec, True, wheel_mass)
        + _wheel_body("fr", fa, -ht, spec, True, wheel_mass)
        + _wheel_body("rl", ra, ht, spec, False, wheel_mass)
        + _wheel_body("rr", ra, -ht, spec, False, wheel_mass)
    )
    bodies = "".join(
        f'<body name="object_{i}" mocap="true" pos="{1000.0 + 10.0 * i} 1000 {o.height / 2.0}">'
        f'<geom name="object_{i}" type="box" size="{o.length / 2.0} {o.width / 2.0} {o.height / 2.0}" '
        f'contype="0" conaffinity="{_OBJECT_BIT}" condim="3" friction="0.5 0.005 0.0001"/></body>'
        for i, o in enumerate(objects)
    )
    max_steer = math.radians(spec.max_steering_deg)
    steer_act = "".join(
        # a position servo (affine bias -kp q - kv qdot) acting on the filtered command
        f'<general name="steer_{w}" joint="steer_{w}" gainprm="{spec.steering_kp}" biastype="affine" '
        f'biasprm="0 {-spec.steering_kp} {-spec.steering_kv}" '
        f'ctrlrange="{-max_steer} {max_steer}" ctrllimited="true" dyntype="filterexact" '
        f'dynprm="{spec.steering_time_constant}"/>'
        for w in ("fl", "fr")
    )
    max_omega = spec.max_speed / spec.wheel_radius
    drive_act = "".join(
        f'<velocity name="drive_{w}" joint="spin_{w}" kv="{spec.wheel_kv}" '
        f'ctrlrange="{-max_omega} {max_omega}" ctrllimited="true" '
        f'forcerange="{-spec.wheel_torque} {spec.wheel_torque}" forcelimited="true"/>'
        for w in WHEEL_NAMES
    )
    return (
        '<mujoco model="trackside_car">'
        '<compiler angle="radian" autolimits="true"/>'
        f'<option timestep="{timestep}" integrator="implicitfast" iterations="8" ls_iterations="6">'
        '<flag warmstart="enable"/></option>'
        "<worldbody>"
        f'<geom name="ground" type="plane" size="0 0 1" contype="0" conaffinity="{_GROUND_BIT}" '
        f'condim="3" friction="{spec.tyre_friction} 0.005 0.0001"/>'
        f'<body name="car" pos="0 0 {spec.wheel_radius}">'
        '<freejoint name="car_root"/>'
        f'<geom name="chassis" type="box" size="{hx} {hy} {hz}" pos="0 0 {hz}" mass="{chassis_mass}" '
        f'contype="{_OBJECT_BIT}" conaffinity="0" condim="3" friction="0.5 0.005 0.0001"/>'
        f"{wheels}</body>{bodies}</worldbody>"
        f"<actuator>{steer_act}{drive_act}</actuator>"
        "</mujoco>"
    )


def build_model(spec: CarSpec, objects: tuple[ObjectSlot, ...], timestep: float) -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(build_mjcf(spec, objects, timestep))
