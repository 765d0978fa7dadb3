"""Typed, validated robot contract: what the policy's action and state vectors mean on this robot."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum


class GroupKind(str, Enum):
    JOINT_POSITION = "joint_position"  # joint positions (rad or m) to a position controller
    GRIPPER = "gripper"  # one gripper axis in the contract's gripper unit
    EE_POSE = "ee_pose"  # end-effector pose: xyz [m] + 6-D rotation, to a Cartesian controller
    BASE_TWIST = "base_twist"  # base velocity (vx, vy [m/s], wz [rad/s]) to a velocity controller


class OutputKind(str, Enum):
    JTC = "jtc"  # trajectory_msgs/JointTrajectory to a joint_trajectory_controller
    FORWARD_POSITION = "forward_position"  # std_msgs/Float64MultiArray to a forward position controller
    TWIST = "twist"  # geometry_msgs/Twist
    TWIST_STAMPED = "twist_stamped"  # geometry_msgs/TwistStamped
    POSE_STAMPED = "pose_stamped"  # geometry_msgs/PoseStamped


class Representation(str, Enum):
    ABSOLUTE = "absolute"  # actions are targets
    RELATIVE = "relative"  # actions are offsets from the state observed at t_obs


class CameraTransport(str, Enum):
    RAW = "raw"  # sensor_msgs/Image
    COMPRESSED = "compressed"  # sensor_msgs/CompressedImage


OUTPUTS_BY_KIND: dict[GroupKind, frozenset[OutputKind]] = {
    GroupKind.JOINT_POSITION: frozenset({OutputKind.JTC, OutputKind.FORWARD_POSITION}),
    GroupKind.GRIPPER: frozenset({OutputKind.JTC, OutputKind.FORWARD_POSITION}),
    GroupKind.EE_POSE: frozenset({OutputKind.POSE_STAMPED}),  # with an `ik:` section: JTC / forward instead
    GroupKind.BASE_TWIST: frozenset({OutputKind.TWIST, OutputKind.TWIST_STAMPED}),
}

EE_POSITION_AXES = ("x", "y", "z")
EE_ROTATION_AXES = ("r6d_0", "r6d_1", "r6d_2", "r6d_3", "r6d_4", "r6d_5")
EE_TANGENT_AXES = ("rx", "ry", "rz")  # control axes of the rotation: rotation vector in the tool frame
BASE_AXES = ("vx", "vy", "wz")


@dataclass(frozen=True)
class AxisLimits:
    """Limits of one control axis, in the axis unit (rad, m, or the gripper unit) and per second."""

    velocity_max: float
    acceleration_max: float
    jerk_max: float
    position_min: float = -math.inf
    position_max: float = math.inf
    position_margin: float = 0.0
    max_step: float | None = None  # largest change of the command in one control tick; None: derived

    @property
    def safe_min(self) -> float:
        return self.position_min + self.position_margin

    @property
    def safe_max(self) -> float:
        return self.position_max - self.position_margin


@dataclass(frozen=True)
class Workspace:
    """Axis-aligned box [m] in the group's base frame that the end effector must stay in."""

    min_m: tuple[float, float, float]
    max_m: tuple[float, float, float]


@dataclass(frozen=True)
class KinematicModel:
    """Robot description used to place a joint group's end effector (workspace check, RViz paths)."""

    path: str  # URDF (pinocchio) or MJCF (MuJoCo), resolved to an absolute path
    format: str  # "urdf" | "mjcf"
    tip: str  # frame (URDF) or body (MJCF) whose origin is checked against the workspace
    model_joints: tuple[str, ...]  # joint names in the model, one per group joint


@dataclass(frozen=True)
class ArmIkModel:
    """How an ee_pose group reaches joint-space controllers: IK of an arm of a URDF, then joint limits."""

    urdf: str  # resolved absolute path
    base_frame: str  # frame the group's poses are expressed in (the arm's mount: poses independent of the rest)
    tip_frame: str
    joints: tuple[str, ...]  # the arm's joints, in command order
    limits: tuple[AxisLimits, ...]  # one per joint [rad]; position bounds from the URDF unless given
    tracking_tolerance_rad: float | None = None
    singularity_decelerate_condition: float = 17.0  # MoveIt Servo's lower_singularity_threshold
    singularity_stop_condition: float = 30.0  # hard_stop_singularity_threshold
    leaving_singularity_multiplier: float = 2.0  # leaving_singularity_threshold_multiplier


@dataclass(frozen=True)
class SelfCollisionModel:
    """Which parts of the robot must keep apart, from the URDF's collision geometry."""

    urdf: str  # resolved absolute path
    pairs: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]  # link sets checked against each other
    proximity_threshold_m: float  # below this distance, motion toward a collision slows down
    stop_distance_m: float  # motion that would bring it below this halts; motion away is allowed


@dataclass(frozen=True)
class Output:
    kind: OutputKind
    topic: str
    frame_id: str = ""  # frame for stamped outputs


@dataclass(frozen=True)
class Group:
    """One independently commanded part of the robot."""

    name: str
    kind: GroupKind
    axes: tuple[str, ...]  # action axes: joint names, or the fixed axes of EE / base groups
    unit: str  # unit of position-like axes: rad, m, or the gripper unit
    representation: Representation
    limits: tuple[AxisLimits, ...]  # one per control axis (EE: x, y, z, rx, ry, rz)
    output: Output
    action_slots: tuple[int, ...]  # model action slot of each action axis
    state_slots: tuple[int, ...]  # model state slot of each state axis (empty: not in the state)
    continuous: tuple[bool, ...] = ()  # per action axis: angle without limits, unwrapped across chunks
    workspace: Workspace | None = None
    kinematics: KinematicModel | None = None
    tracking_tolerance: float | None = None  # max |measured - commanded| before a fault; None: unchecked
    state_topic: str = ""  # EE groups: PoseStamped topic of the measured pose
    rotation_frame: str = "base"  # EE relative rotations: "base" R = dR·R_obs (WALL-X), "tool" R = R_obs·dR
    ik: ArmIkModel | None = None  # ee_pose groups commanded through joint-space controllers

    @property
    def joints(self) -> tuple[str, ...]:
        """The joints this group commands (none for a Cartesian EE group or a base)."""
        if self.ik is not None:
            return self.ik.joints
        return self.axes if self.kind in (GroupKind.JOINT_POSITION, GroupKind.GRIPPER) else ()

    @property
    def joint_limits(self) -> tuple[AxisLimits, ...]:
        """Limits of the joints this group commands, one per entry of `joints`."""
        if self.ik is not None:
            return self.ik.limits
        return self.limits if self.joints else ()

    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(f"{self.name}/{axis}" for axis in self.axes)

    @property
    def action_dim(self) -> int:
        return len(self.axes)

    @property
    def control_axes(self) -> tuple[str, ...]:
        if self.kind is GroupKind.EE_POSE:
            return EE_POSITION_AXES + EE_TANGENT_AXES
        return self.axes


@dataclass(frozen=True)
class Camera:
    name: str  # observation key, e.g. "top"
    topic: str
    transport: CameraTransport
    view: str  # view name in the model prompt, e.g. "front view"


@dataclass(frozen=True)
class RobotContract:
    """What a checkpoint's action and state vectors mean on one robot, and the limits that keep it safe."""

    name: str
    source: str  # file it was loaded from
    dt_s: float  # duration of one action step of the policy [s]
    max_action_dim: int  # model action width (real dims zero-padded, with a mask)
    max_state_dim: int
    groups: tuple[Group, ...]
    cameras: tuple[Camera, ...] = ()
    joint_state_topics: tuple[str, ...] = ("/joint_states",)
    description: str = ""
    self_collision: SelfCollisionModel | None = None
    _offsets: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        offsets, total = [], 0
        for g in self.groups:
            offsets.append(total)
            total += g.action_dim
        object.__setattr__(self, "_offsets", tuple(offsets))

    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(n for g in self.groups for n in g.action_names)

    @property
    def action_dim(self) -> int:
        return sum(g.action_dim for g in self.groups)

    def group(self, name: str) -> Group:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"contract {self.name} has no group {name!r}")

    def action_slice(self, group: Group | str) -> slice:
        """Columns of a group in the contract-ordered action vector."""
        g = self.group(group) if isinstance(group, str) else group
        start = self._offsets[self.groups.index(g)]
        return slice(start, start + g.action_dim)
