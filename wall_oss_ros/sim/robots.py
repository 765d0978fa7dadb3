"""The robots sim_node can simulate, and how each faces ROS: controllers, cameras, base.

Each is named by its controllers as a ros2_control configuration of the real robot names them, so that a
contract written for the robot drives the simulation unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class SimulatedRobot(Protocol):
    joint_names: tuple[str, ...]
    model_path: str
    timestep_s: float

    @property
    def time_s(self) -> float: ...

    def joint_positions(self) -> np.ndarray: ...

    def joint_velocities(self) -> np.ndarray: ...

    def step(self, targets: np.ndarray, duration_s: float) -> None: ...

    def render(self, camera: str) -> np.ndarray: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RobotFaces:
    """controllers: name → its joints; cameras: camera in the model → Image topic; base_topic: the base
    controller's TwistStamped command topic ('' without a base)."""

    controllers: dict[str, tuple[str, ...]]
    cameras: dict[str, str]
    base_topic: str = ""


ROBOTS = ("aloha", "tiago")


def make_robot(robot: str, *, task: str, seed: int, width: int, height: int, shadows: bool,
               camera_topic: str) -> tuple[SimulatedRobot, RobotFaces]:
    """The simulation of `robot` and its ROS faces. ALOHA: gym-aloha's task; TIAGo++: its table scene."""
    if robot == "aloha":
        from wall_oss_ros.sim.aloha_sim import JOINT_NAMES, AlohaSim

        controllers = {f"{side}_{part}_controller": tuple(n for n in JOINT_NAMES if n.startswith(f"vx300s_{side}/")
                                                          and (n.endswith("/gripper") == (part == "gripper")))
                       for side in ("left", "right") for part in ("arm", "gripper")}
        return AlohaSim(task, seed, width, height, shadows), RobotFaces(controllers, {"top": camera_topic})
    if robot == "tiago":
        from wall_oss_ros.sim.tiago_sim import TiagoSim

        controllers = {f"arm_{side}_controller": tuple(f"arm_{side}_{i}_joint" for i in range(1, 8))
                       for side in ("left", "right")}
        controllers.update({f"hand_{side}_controller": (f"hand_{side}_mrl_joint",) for side in ("left", "right")})
        controllers.update(torso_controller=("torso_lift_joint",), head_controller=("head_1_joint", "head_2_joint"))
        cameras = {"head": "/head_front_camera/rgb/image_raw", "left_wrist": "/wrist_left_camera/image_raw",
                   "right_wrist": "/wrist_right_camera/image_raw"}
        return TiagoSim(width, height), RobotFaces(controllers, cameras, "/mobile_base_controller/cmd_vel")
    raise ValueError(f"robot {robot!r}: one of {', '.join(ROBOTS)}")
