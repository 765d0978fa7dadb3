"""Robot contracts: what a checkpoint's action/state vectors mean on a robot, and its limits."""

from wall_oss_ros.core.contract.errors import ContractError
from wall_oss_ros.core.contract.loader import load_contract, parse_contract
from wall_oss_ros.core.contract.model import (
    AxisLimits,
    Camera,
    CameraTransport,
    Group,
    GroupKind,
    KinematicModel,
    Output,
    OutputKind,
    Representation,
    RobotContract,
    Workspace,
)

__all__ = [
    "AxisLimits", "Camera", "CameraTransport", "ContractError", "Group", "GroupKind", "KinematicModel", "Output",
    "OutputKind", "Representation", "RobotContract", "Workspace", "load_contract", "parse_contract",
]
