"""Value types crossing the executor's boundary: configuration, measured state, commands, status."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from wall_oss_ros.core.chunk import IntakeLimits
from wall_oss_ros.core.contract import GroupKind
from wall_oss_ros.core.plan import PlanConfig
from wall_oss_ros.core.plan_clock import check_speed_scale
from wall_oss_ros.core.safety.status import ExecutorState, StatusCode
from wall_oss_ros.core.safety.watchdog import WatchdogConfig


@dataclass(frozen=True)
class ExecutorConfig:
    control_hz: float = 100.0  # rate of tick() [Hz]; one tick advances the command by 1/control_hz
    plan: PlanConfig = field(default_factory=PlanConfig)
    intake: IntakeLimits = field(default_factory=IntakeLimits)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    step_cap_factor: float = 1.5  # default max step per tick = factor x velocity_max / control_hz
    speed_scale: float = 1.0  # the plan runs this many times as fast as real time, in (0, 1] (core/plan_clock.py)
    speed_scale_rate_per_s: float = 1.0  # fastest change of the running speed scale [1/s]
    # Slow the plan's clock where a chunk is infeasible, instead of chasing it (core/retiming.py). Off by default
    # until its closed-loop behaviour with jittery policies is settled (docs/explanation/executor-and-safety.md).
    retime: bool = True

    def __post_init__(self) -> None:
        if not self.control_hz > 0:
            raise ValueError(f"control_hz must be positive, got {self.control_hz}")
        if not self.step_cap_factor >= 1.0:
            raise ValueError("step_cap_factor below 1 would fight the velocity limit")
        check_speed_scale(self.speed_scale)
        if not self.speed_scale_rate_per_s > 0.0:
            raise ValueError(f"speed_scale_rate_per_s must be positive, got {self.speed_scale_rate_per_s}")


@dataclass(frozen=True)
class MeasuredState:
    """What the robot reports: joint positions by name and, for end-effector groups, tip poses."""

    stamp: float  # [s] time the measurement was taken (executor clock)
    joints: Mapping[str, float] = field(default_factory=dict)
    poses: Mapping[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # group -> (xyz, quat xyzw)


@dataclass(frozen=True)
class GroupCommand:
    """One group's command for this tick.

    joint_position / gripper: positions, velocities, accelerations per joint.
    ee_pose: positions = xyz [m] + quaternion (x, y, z, w); velocities = linear [m/s] + angular [rad/s], base frame.
    base_twist: velocities = the twist per axis (vx, vy [m/s], wz [rad/s]); accelerations likewise.
    """

    group: str
    kind: GroupKind
    names: tuple[str, ...]
    positions: np.ndarray
    velocities: np.ndarray
    accelerations: np.ndarray


@dataclass(frozen=True)
class ChunkOutcome:
    accepted: bool
    steps_used: int = 0
    reason: str = ""


@dataclass(frozen=True)
class ExecutorSnapshot:
    """What ExecutorStatus carries."""

    stamp: float
    state: ExecutorState
    status_code: StatusCode
    status_text: str
    active_chunk_id: int | None
    remaining_steps: int
    chunk_requested: bool
    committed_names: tuple[str, ...]
    committed_dt_s: float
    committed_start: float
    committed_values: np.ndarray  # (K, D)
    interventions: Mapping[str, int]
    last_fault: str
    chunk_id: int | None = None  # latest accepted chunk
    chunk_age_s: float = math.nan  # time since the latest chunk was accepted [s]
    chunk_arrival_latency_s: float = math.nan  # its t_obs → its arrival [s]
    observation_to_command_s: float = math.nan  # t_obs of the latest merged chunk → first command from it [s]
    # Arms through IK and the self-collision guard: "<arm>/condition" (Jacobian condition number of the joint
    # command), "<arm>/ik" (its last IK status), "self_collision_distance_m" (of the last accepted command).
    arm_state: Mapping[str, str] = field(default_factory=dict)
    speed_scale: float = 1.0  # the speed scale asked for
    plan_rate: float = 1.0  # the plan clock's rate this tick (below the scale while ramping or retimed)
    plan_lag_s: float = 0.0  # real time the plan is behind its chunk's schedule [s] (retiming)
