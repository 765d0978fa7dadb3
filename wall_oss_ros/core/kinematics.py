"""Forward kinematics of a group's tip: pinocchio for a URDF, MuJoCo for an MJCF.

pinocchio's MJCF parser rejects models split into <include> fragments (gym-aloha's), so MJCF models
use MuJoCo's own kinematics.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

import numpy as np

from wall_oss_ros.core.contract import KinematicModel


class ForwardKinematics(Protocol):
    def position(self, joints: np.ndarray) -> np.ndarray:
        """Tip position [m] in the model's root frame for the group's joint positions."""
        ...


@lru_cache(maxsize=8)
def _mujoco_model(path: str):  # noqa: ANN202 - mujoco.MjModel, imported lazily
    import mujoco

    return mujoco.MjModel.from_xml_path(path)


class MujocoKinematics:
    def __init__(self, path: str, joints: tuple[str, ...], body: str) -> None:
        import mujoco

        self._mujoco = mujoco
        self.model = _mujoco_model(path)
        self.data = mujoco.MjData(self.model)
        try:
            self.qpos_index = np.array([self.model.joint(j).qposadr[0] for j in joints])
            self.body = self.model.body(body).id
        except KeyError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    def position(self, joints: np.ndarray) -> np.ndarray:
        self.data.qpos[self.qpos_index] = joints
        self._mujoco.mj_kinematics(self.model, self.data)
        return self.data.xpos[self.body].copy()


class PinocchioKinematics:
    def __init__(self, path: str, joints: tuple[str, ...], frame: str) -> None:
        import pinocchio as pin

        self._pin = pin
        self.model = pin.buildModelFromUrdf(path)
        self.data = self.model.createData()
        missing = [j for j in joints if not self.model.existJointName(j)]
        if missing or not self.model.existFrame(frame):
            raise ValueError(f"{path}: unknown joints {missing} or frame {frame!r}")
        self.q_index = np.array([self.model.joints[self.model.getJointId(j)].idx_q for j in joints])
        self.frame = self.model.getFrameId(frame)
        self.q = pin.neutral(self.model)

    def position(self, joints: np.ndarray) -> np.ndarray:
        self.q[self.q_index] = joints
        self._pin.framesForwardKinematics(self.model, self.data, self.q)
        return np.array(self.data.oMf[self.frame].translation)


def make_kinematics(model: KinematicModel) -> ForwardKinematics:
    if model.format == "mjcf":
        return MujocoKinematics(model.path, model.model_joints, model.tip)
    return PinocchioKinematics(model.path, model.model_joints, model.tip)
