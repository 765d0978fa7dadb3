"""config/controllers/: ros2_control configurations for the contracts, matching what the executor sends."""

from __future__ import annotations

import pytest
import yaml

from test.support.ros_process import REPO_ROOT
from wall_oss_ros.core.contract import OutputKind, load_contract
from wall_oss_ros.core.trajectory_following import JtcSettings
from wall_oss_ros.ros import executor_node

CONFIGS = sorted((REPO_ROOT / "config" / "controllers").glob("*.yaml"))
TYPES = {OutputKind.JTC: "joint_trajectory_controller/JointTrajectoryController",
         OutputKind.FORWARD_POSITION: "forward_command_controller/ForwardCommandController"}


def test_there_is_one_for_every_contract_with_joint_outputs():
    assert {p.stem for p in CONFIGS} == {"aloha_bimanual", "mobile_manipulator", "tiago_dual"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_controllers_are_the_contracts_outputs_with_its_joints(path):
    config = yaml.safe_load(path.read_text())
    assert "<<" not in path.read_text() and "&" not in path.read_text()  # rcl's parameter parser: no anchors
    contract = load_contract(REPO_ROOT / "config" / "robots" / f"{path.stem}.yaml")
    declared = config["controller_manager"]["ros__parameters"]
    assert declared["joint_state_broadcaster"]["type"] == "joint_state_broadcaster/JointStateBroadcaster"
    for group in contract.groups:
        if group.output.kind not in TYPES:
            continue
        name = group.output.topic.strip("/").split("/")[0]
        assert declared[name]["type"] == TYPES[group.output.kind], name
        parameters = config[name]["ros__parameters"]
        assert sorted(parameters["joints"]) == sorted(group.joints), name
        if group.output.kind is OutputKind.JTC:
            # the executor's default (horizon: started on receipt, last point at rest) needs no flag
            assert next(p.default for p in executor_node.PARAMS if p.name == "jtc_mode") == "horizon"
            assert parameters["allow_nonzero_velocity_at_trajectory_end"] is False
            assert parameters["allow_partial_joints_goal"] is False
            assert parameters["command_interfaces"] == ["position"]


def test_the_simulated_controllers_default_to_the_stock_rules():
    assert JtcSettings() == JtcSettings(allow_nonzero_velocity_at_trajectory_end=False,
                                        interpolate_from_desired_state=False)
