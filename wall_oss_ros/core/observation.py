"""Synchronised observations: the latest camera frames and proprioception, checked for age and spread.

t_obs is the stamp of the newest camera frame; every camera and the joint states must lie within
`sync_tolerance_s` of it, and t_obs must be newer than the last observation used (superseded or
repeated observations are not computed twice).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from wall_oss_ros.core.contract import GroupKind, RobotContract
from wall_oss_ros.core.rotations import quat_to_rot6d


@dataclass(frozen=True)
class Snapshot:
    t_obs: float  # [s] stamp of the newest camera frame
    frames: Mapping[str, object]  # camera name → its latest frame (undecoded message)
    state_names: tuple[str, ...]
    state: np.ndarray


Pose = tuple[tuple[float, ...], tuple[float, ...]]  # (xyz [m], quaternion x y z w)


def state_vector(contract: RobotContract, joints: Mapping[str, float],
                 poses: Mapping[str, Pose]) -> tuple[tuple[str, ...], np.ndarray]:
    """The contract's proprioception (action names of the groups with state slots), in robot units."""
    names, values = [], []
    for g in contract.groups:
        if not g.state_slots:
            continue
        if g.kind is GroupKind.EE_POSE:
            if g.name not in poses:
                raise KeyError(f"no pose of {g.name} yet ({g.state_topic})")
            xyz, quat = poses[g.name]
            values += list(xyz) + list(quat_to_rot6d(np.asarray(quat, dtype=float)))
        else:
            missing = [j for j in g.axes if j not in joints]
            if missing:
                raise KeyError(f"no joint state for {missing[:3]}")
            values += [joints[j] for j in g.axes]
        names += list(g.action_names)
    return tuple(names), np.asarray(values, dtype=float)


class ObservationAssembler:
    def __init__(self, contract: RobotContract, sync_tolerance_s: float, max_age_s: float) -> None:
        self.contract, self.sync_tolerance_s, self.max_age_s = contract, sync_tolerance_s, max_age_s
        self.frames: dict[str, tuple[float, object]] = {}
        self.joints: dict[str, float] = {}
        self.joint_stamp = -np.inf
        self.poses: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {}
        self.last_t_obs = -np.inf

    def add_frame(self, camera: str, stamp: float, frame: object) -> None:
        self.frames[camera] = (stamp, frame)

    def add_joints(self, stamp: float, positions: Mapping[str, float]) -> None:
        self.joints.update(positions)
        self.joint_stamp = max(self.joint_stamp, stamp)

    def add_pose(self, group: str, xyz: tuple[float, ...], quat: tuple[float, ...]) -> None:
        self.poses[group] = (xyz, quat)

    def snapshot(self, now: float) -> tuple[Snapshot | None, str]:
        """The observation to compute from, or None and why not."""
        missing = [c.name for c in self.contract.cameras if c.name not in self.frames]
        if missing:
            return None, f"waiting for cameras {missing}"
        stamps = {c.name: self.frames[c.name][0] for c in self.contract.cameras}
        t_obs = max(stamps.values()) if stamps else self.joint_stamp
        if t_obs <= self.last_t_obs:
            return None, "no new observation"
        spread = [abs(t_obs - s) for s in stamps.values()] + [abs(t_obs - self.joint_stamp)]
        if max(spread) > self.sync_tolerance_s:
            return None, f"observation not synchronised: stamps {max(spread):.3f} s apart (tolerance " \
                         f"{self.sync_tolerance_s} s)"
        if now - t_obs > self.max_age_s:
            return None, f"observation is stale: {now - t_obs:.3f} s old"
        try:
            names, state = state_vector(self.contract, self.joints, self.poses)
        except KeyError as exc:
            return None, str(exc.args[0])
        self.last_t_obs = t_obs
        return Snapshot(t_obs, {c: f for c, (_, f) in self.frames.items()}, names, state), ""
