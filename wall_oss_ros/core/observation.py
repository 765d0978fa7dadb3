"""Synchronised observations: the latest camera frames and proprioception, checked for age and spread.

t_obs is the stamp of the newest camera frame; every camera and the joint states must lie within
`sync_tolerance_s` of it, and t_obs must be newer than the last observation used (superseded or
repeated observations are not computed twice).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from wall_oss_ros.core.contract import GroupKind, RobotContract
from wall_oss_ros.core.ik_stage import arm_kinematics
from wall_oss_ros.core.rotations import matrix_to_rot6d, quat_to_rot6d

NO_NEW_OBSERVATION = "no new observation"  # the normal state between frames: nothing to say


@dataclass(frozen=True)
class Snapshot:
    t_obs: float  # [s] stamp of the newest camera frame
    frames: Mapping[str, object]  # camera name → its latest frame (undecoded message)
    state_names: tuple[str, ...]
    state: np.ndarray


Pose = tuple[tuple[float, ...], tuple[float, ...]]  # (xyz [m], quaternion x y z w)


def state_columns(contract: RobotContract) -> dict[str, slice]:
    """Where each group with state lies in the state vector (its action names, contract order; an EE group's
    state is its measured pose, xyz + 6-D rotation)."""
    columns, start = {}, 0
    for g in contract.groups:
        if g.state_slots:
            columns[g.name] = slice(start, start + g.action_dim)
            start += g.action_dim
    return columns


def state_names(contract: RobotContract) -> tuple[str, ...]:
    """The names of state_vector's values."""
    return tuple(n for g in contract.groups if g.state_slots for n in g.action_names)


def state_vector(contract: RobotContract, joints: Mapping[str, float],
                 poses: Mapping[str, Pose]) -> tuple[tuple[str, ...], np.ndarray]:
    """The contract's proprioception (action names of the groups with state slots), in robot units."""
    values = []
    for g in contract.groups:
        if not g.state_slots:
            continue
        if g.ik is not None:  # measured through the arm's joints: the pose of their forward kinematics
            missing = [j for j in g.joints if j not in joints]
            if missing:
                raise KeyError(f"no joint state for {missing[:3]}")
            xyz, rotation = arm_kinematics(g).forward(np.array([joints[j] for j in g.joints], dtype=float))
            values += list(xyz) + list(matrix_to_rot6d(rotation))
        elif g.kind is GroupKind.EE_POSE:
            if g.name not in poses:
                raise KeyError(f"no pose of {g.name} yet ({g.state_topic})")
            xyz, quat = poses[g.name]
            values += list(xyz) + list(quat_to_rot6d(np.asarray(quat, dtype=float)))
        else:
            missing = [j for j in g.axes if j not in joints]
            if missing:
                raise KeyError(f"no joint state for {missing[:3]}")
            values += [joints[j] for j in g.axes]
    return state_names(contract), np.asarray(values, dtype=float)


def joint_state_problem(contract: RobotContract, joints: Mapping[str, float]) -> str:
    """Why the received joint states cannot describe the robot ("" when they can): missing or non-finite."""
    needed = [j for g in contract.groups for j in g.joints]
    missing = [j for j in needed if j not in joints]
    if missing:
        return f"joint states lack {len(missing)} contract joints, e.g. {missing[:3]}"
    bad = [j for j in needed if not np.isfinite(joints[j])]
    if bad:
        return f"joint states are not finite for {bad[:3]}"
    return ""


class ObservationAssembler:
    """Approximate-time synchronisation: t_obs = the newest frame; proprioception = the joint states
    stamped nearest to t_obs, once one stamped at or after t_obs has arrived (waited for up to the maximum
    observation age), so that the same recorded stream gives the same observations live and offline."""

    HISTORY_S = 1.0  # joint-state history kept for matching [s]

    def __init__(self, contract: RobotContract, sync_tolerance_s: float, max_age_s: float) -> None:
        self.contract, self.sync_tolerance_s, self.max_age_s = contract, sync_tolerance_s, max_age_s
        self.frames: dict[str, tuple[float, object]] = {}
        self.joints: dict[str, float] = {}  # the latest value of every joint received
        self.joint_stamp = -np.inf  # newest joint-state stamp
        self._history: deque[tuple[float, dict[str, float]]] = deque()  # (stamp, all joints then), by stamp
        self.poses: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {}
        self.last_t_obs = -np.inf

    def add_frame(self, camera: str, stamp: float, frame: object) -> None:
        self.frames[camera] = (stamp, frame)

    def add_joints(self, stamp: float, positions: Mapping[str, float]) -> None:
        self.joints.update(positions)
        if stamp < self.joint_stamp:
            return  # out of order: kept as the latest value, not as history
        self.joint_stamp = stamp
        self._history.append((stamp, dict(self.joints)))
        while self._history and self._history[0][0] < stamp - self.HISTORY_S:
            self._history.popleft()

    def joints_at(self, t: float) -> tuple[float, dict[str, float]]:
        """The joint states stamped nearest to t (latest values for joints not yet in the history)."""
        if not self._history:
            return self.joint_stamp, self.joints
        stamp, joints = min(self._history, key=lambda entry: abs(entry[0] - t))
        return stamp, joints

    def add_pose(self, group: str, xyz: tuple[float, ...], quat: tuple[float, ...]) -> None:
        self.poses[group] = (xyz, quat)

    def snapshot(self, now: float) -> tuple[Snapshot | None, str]:
        """The observation to compute from, or None and why not."""
        missing = [c.name for c in self.contract.cameras if c.name not in self.frames]
        if missing:
            topics = [c.topic for c in self.contract.cameras if c.name in missing]
            return None, f"waiting for cameras {missing} (topics {topics})"
        stamps = {c.name: self.frames[c.name][0] for c in self.contract.cameras}
        t_obs = max(stamps.values()) if stamps else self.joint_stamp
        if now - t_obs > self.max_age_s:  # checked first: a camera that went silent is not "nothing new"
            return None, f"camera frames are stale: the newest is {now - t_obs:.2f} s old"
        if t_obs <= self.last_t_obs:
            return None, NO_NEW_OBSERVATION
        if self.joint_stamp < t_obs and now - t_obs < self.max_age_s:
            # Like message_filters' approximate-time policy, wait for a joint state from after the frame:
            # under load, joint states are handled later than the clock advances, and the nearest one may
            # still be in flight. No observation is formed without it.
            return None, "waiting for joint states up to the frame's time"
        joint_stamp, joints = self.joints_at(t_obs)
        spread = [abs(t_obs - s) for s in stamps.values()] + [abs(t_obs - joint_stamp)]
        if max(spread) > self.sync_tolerance_s:
            return None, f"observation not synchronised: stamps {max(spread):.3f} s apart (tolerance " \
                         f"{self.sync_tolerance_s} s)"
        try:
            names, state = state_vector(self.contract, joints, self.poses)
        except KeyError as exc:
            return None, str(exc.args[0])
        if not np.all(np.isfinite(state)):
            bad = [n for n, v in zip(names, state, strict=True) if not np.isfinite(v)]
            return None, f"proprioception is not finite: {bad[:3]}"
        self.last_t_obs = t_obs
        return Snapshot(t_obs, {c: f for c, (_, f) in self.frames.items()}, names, state), ""
