"""Executor states, status codes and intervention kinds (values mirror msg/ExecutorStatus.msg)."""

from __future__ import annotations

from enum import Enum, IntEnum


class ExecutorState(IntEnum):
    IDLE = 0
    RUNNING = 1
    PAUSED = 2
    HOLDING = 3
    HALTING = 4
    ESTOP = 5
    FAULT = 6


class StatusCode(IntEnum):
    NO_WARNING = 0
    LIMITED_POSITION = 1
    LIMITED_DYNAMICS = 2
    LIMITED_STEP = 3
    LIMITED_WORKSPACE = 4
    LIMITED_GRIPPER = 5
    LIMITED_BASE = 6
    CHUNK_REJECTED = 7
    LIMITED_IK = 8
    HALT_CHUNK_TIMEOUT = 10
    HALT_STALE_OBSERVATION = 11
    HALT_TRACKING_ERROR = 12
    HALT_NONFINITE = 13
    HALT_NO_CONTROLLER = 14
    HALT_NOT_FOLLOWING = 15
    HALT_ESTOP = 20
    PAUSED = 21
    # An arm slowed or stopped (MoveIt Servo's conditions); the executor itself keeps running.
    SINGULARITY_DECELERATE = 30
    SINGULARITY_LEAVING = 31
    SINGULARITY_HALT = 32
    COLLISION_DECELERATE = 33
    COLLISION_HALT = 34

    @property
    def is_halt(self) -> bool:
        """The executor halted (every axis): an error. An arm halted for a singularity or collision is not."""
        return StatusCode.HALT_CHUNK_TIMEOUT <= self <= StatusCode.HALT_ESTOP


# Most severe first: the status of a tick is the first of these that occurred in it.
SEVERITY = (
    StatusCode.HALT_ESTOP, StatusCode.HALT_NONFINITE, StatusCode.HALT_NO_CONTROLLER, StatusCode.HALT_NOT_FOLLOWING,
    StatusCode.HALT_TRACKING_ERROR,
    StatusCode.HALT_STALE_OBSERVATION, StatusCode.HALT_CHUNK_TIMEOUT, StatusCode.PAUSED,
    StatusCode.COLLISION_HALT, StatusCode.SINGULARITY_HALT, StatusCode.COLLISION_DECELERATE,
    StatusCode.SINGULARITY_DECELERATE, StatusCode.SINGULARITY_LEAVING, StatusCode.LIMITED_IK,
    StatusCode.LIMITED_WORKSPACE, StatusCode.LIMITED_POSITION, StatusCode.LIMITED_GRIPPER, StatusCode.LIMITED_BASE,
    StatusCode.LIMITED_STEP, StatusCode.LIMITED_DYNAMICS, StatusCode.CHUNK_REJECTED, StatusCode.NO_WARNING,
)

STATUS_TEXT = {
    StatusCode.NO_WARNING: "following the plan",
    StatusCode.LIMITED_POSITION: "a joint target was clamped into its position limits",
    StatusCode.LIMITED_DYNAMICS: "velocity / acceleration / jerk limits shaped the command",
    StatusCode.LIMITED_STEP: "the step from the last command was capped",
    StatusCode.LIMITED_WORKSPACE: "an end-effector target left the workspace box",
    StatusCode.LIMITED_GRIPPER: "a gripper target was clamped into its range",
    StatusCode.LIMITED_BASE: "a base velocity was limited",
    StatusCode.CHUNK_REJECTED: "the latest chunk was rejected",
    StatusCode.HALT_CHUNK_TIMEOUT: "halted: no fresh chunk in time",
    StatusCode.HALT_STALE_OBSERVATION: "halted: measured state is stale",
    StatusCode.HALT_TRACKING_ERROR: "halted: measured state diverged from the command",
    StatusCode.HALT_NONFINITE: "halted: non-finite command prevented",
    StatusCode.HALT_NO_CONTROLLER: "halted: a controller topic lost its subscriber",
    StatusCode.HALT_NOT_FOLLOWING: "halted: a controller does not follow the commands",
    StatusCode.HALT_ESTOP: "e-stop latched",
    StatusCode.PAUSED: "paused",
    StatusCode.LIMITED_IK: "an end-effector target is out of the arm's reach: it goes as close as its limits allow",
    StatusCode.SINGULARITY_DECELERATE: "an arm slows down: approaching a singularity",
    StatusCode.SINGULARITY_LEAVING: "an arm slows down: leaving a singularity",
    StatusCode.SINGULARITY_HALT: "an arm halted at a singularity",
    StatusCode.COLLISION_DECELERATE: "an arm slows down: close to a self-collision",
    StatusCode.COLLISION_HALT: "an arm halted: it would come closer than the self-collision stop distance",
}


class Intervention(str, Enum):
    NONFINITE = "nonfinite"
    POSITION_LIMIT = "position_limit"
    DYNAMICS_LIMIT = "dynamics_limit"
    STEP_LIMIT = "step_limit"
    WORKSPACE_LIMIT = "workspace_limit"
    GRIPPER_RANGE = "gripper_range"
    BASE_LIMIT = "base_limit"
    CHUNK_TIMEOUT = "chunk_timeout"
    STALE_OBSERVATION = "stale_observation"
    TRACKING_ERROR = "tracking_error"
    REJECTED_CHUNK = "rejected_chunk"
    ESTOP = "estop"
    NO_CONTROLLER = "no_controller"
    NOT_FOLLOWING = "not_following"
    IK_UNREACHABLE = "ik_unreachable"
    SINGULARITY_DECELERATE = "singularity_decelerate"
    SINGULARITY_HALT = "singularity_halt"
    COLLISION_DECELERATE = "collision_decelerate"
    COLLISION_HALT = "collision_halt"


INTERVENTION_STATUS = {
    Intervention.NONFINITE: StatusCode.CHUNK_REJECTED,
    Intervention.POSITION_LIMIT: StatusCode.LIMITED_POSITION,
    Intervention.DYNAMICS_LIMIT: StatusCode.LIMITED_DYNAMICS,
    Intervention.STEP_LIMIT: StatusCode.LIMITED_STEP,
    Intervention.WORKSPACE_LIMIT: StatusCode.LIMITED_WORKSPACE,
    Intervention.GRIPPER_RANGE: StatusCode.LIMITED_GRIPPER,
    Intervention.BASE_LIMIT: StatusCode.LIMITED_BASE,
    Intervention.CHUNK_TIMEOUT: StatusCode.HALT_CHUNK_TIMEOUT,
    Intervention.STALE_OBSERVATION: StatusCode.HALT_STALE_OBSERVATION,
    Intervention.TRACKING_ERROR: StatusCode.HALT_TRACKING_ERROR,
    Intervention.REJECTED_CHUNK: StatusCode.CHUNK_REJECTED,
    Intervention.ESTOP: StatusCode.HALT_ESTOP,
    Intervention.NO_CONTROLLER: StatusCode.HALT_NO_CONTROLLER,
    Intervention.NOT_FOLLOWING: StatusCode.HALT_NOT_FOLLOWING,
    Intervention.IK_UNREACHABLE: StatusCode.LIMITED_IK,
    Intervention.SINGULARITY_DECELERATE: StatusCode.SINGULARITY_DECELERATE,
    Intervention.SINGULARITY_HALT: StatusCode.SINGULARITY_HALT,
    Intervention.COLLISION_DECELERATE: StatusCode.COLLISION_DECELERATE,
    Intervention.COLLISION_HALT: StatusCode.COLLISION_HALT,
}


def most_severe(codes: set[StatusCode]) -> StatusCode:
    if not codes:
        return StatusCode.NO_WARNING
    for code in SEVERITY:
        if code in codes:
            return code
    return StatusCode.NO_WARNING
