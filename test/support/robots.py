"""Shipped contracts and measured states of robots at rest, for core tests."""

from __future__ import annotations

from functools import cache

import numpy as np

from wall_oss_ros.core.contract import GroupKind, RobotContract, load_contract
from wall_oss_ros.core.executor_types import MeasuredState
from wall_oss_ros.core.resources import config_path

CONTRACTS = ("aloha_bimanual", "bimanual_ee", "mobile_manipulator", "tiago_dual")
ALOHA_ARM_START = [0.0, -0.96, 1.16, 0.0, -0.3, 0.0]  # gym-aloha START_ARM_POSE
TIAGO_ARM_HOME = [0.3, -0.6, 2.2, 2.0, -0.2, 1.2, -0.5]  # in front, bent, 10 cm clear of the body [rad]


@cache
def contract(name: str) -> RobotContract:
    return load_contract(config_path("robots", f"{name}.yaml"))


def rest_state(c: RobotContract, stamp: float = 0.0) -> MeasuredState:
    """Every joint mid-range (ALOHA arms at their start pose), end effectors at the workspace centre."""
    joints: dict[str, float] = {}
    poses = {}
    for g in c.groups:
        if g.ik is not None:
            joints.update(zip(g.joints, TIAGO_ARM_HOME, strict=True))
        elif g.kind is GroupKind.EE_POSE:
            lo, hi = np.array(g.workspace.min_m), np.array(g.workspace.max_m)
            poses[g.name] = ((lo + hi) / 2, np.array([1.0, 0.0, 0.0, 0.0]))  # pointing down
        elif g.kind is not GroupKind.BASE_TWIST:
            for i, (axis, lim) in enumerate(zip(g.axes, g.limits, strict=True)):
                if g.name.endswith("_arm") and c.name == "aloha_bimanual":
                    joints[axis] = ALOHA_ARM_START[i]
                elif np.isfinite(lim.position_min):
                    joints[axis] = (lim.position_min + lim.position_max) / 2
                else:
                    joints[axis] = 0.0
    return MeasuredState(stamp, joints, poses)


def rest_action(c: RobotContract) -> np.ndarray:
    """The absolute action vector that holds the rest state."""
    from wall_oss_ros.core.ik_stage import arm_ik
    from wall_oss_ros.core.rotations import matrix_to_rot6d, quat_to_rot6d

    m = rest_state(c)
    out = []
    for g in c.groups:
        if g.ik is not None:
            xyz, rotation = arm_ik(g).forward(np.array([m.joints[j] for j in g.joints]))
            out += list(xyz) + list(matrix_to_rot6d(rotation))
        elif g.kind is GroupKind.EE_POSE:
            xyz, quat = m.poses[g.name]
            out += list(xyz) + list(quat_to_rot6d(quat))
        elif g.kind is GroupKind.BASE_TWIST:
            out += [0.0] * g.action_dim
        else:
            out += [m.joints[a] for a in g.axes]
    return np.array(out)
