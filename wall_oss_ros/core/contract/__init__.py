"""Robot contracts: what a checkpoint's action/state vectors mean on a robot, and its limits."""

from wall_oss_ros.core.contract.errors import ContractError
from wall_oss_ros.core.contract.loader import contract_file, load_contract, parse_contract, resolve_contract
from wall_oss_ros.core.contract.model import (
    ArmIkModel,
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
    SelfCollisionModel,
    Workspace,
)
from wall_oss_ros.core.contract.view_names import view_name

__all__ = [
    "ArmIkModel", "AxisLimits", "Camera", "CameraTransport", "ContractError", "Group", "GroupKind",
    "KinematicModel", "Output", "OutputKind", "Representation", "RobotContract", "SelfCollisionModel",
    "Workspace", "contract_file", "load_contract", "parse_contract", "resolve_contract", "view_name",
]
