"""Launch files: loaded with the launch API where it is installed; otherwise everything they reference is checked."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

from test.support.robots import contract
from test.support.ros_process import REPO_ROOT
from wall_oss_ros.ros import bag_replay, executor_node, policy_node, sim_node

LAUNCH_FILES = sorted((REPO_ROOT / "launch").glob("*.launch.py"))
NODE_PARAMS = {"executor_node": {p.name for p in executor_node.PARAMS},
               "policy_node": {p.name for p in policy_node.PARAMS},
               "sim_node": {p.name for p in sim_node.PARAMS},
               "bag_replay": {p.name for p in bag_replay.PARAMS}}
EXTERNAL = {"rviz2"}


def declared_executables() -> set[str]:
    lines = (REPO_ROOT / "cmake" / "executables.txt").read_text().splitlines()
    return {line.split()[0] for line in lines if line.strip() and not line.startswith("#")}


def test_launch_files_exist():
    assert {p.name for p in LAUNCH_FILES} >= {"robot_bimanual.launch.py", "mobile_manipulator.launch.py",
                                              "sim_aloha.launch.py", "sim_tiago.launch.py", "replay.launch.py"}


def test_the_tiago_rviz_configuration_shows_its_cameras_and_markers():
    from wall_oss_ros.ros.launch_graph import rviz_config

    path = rviz_config(str(REPO_ROOT), "tiago_dual")
    assert path.endswith("tiago_dual.rviz")
    text = Path(path).read_text()
    c = contract("tiago_dual")
    for camera in c.cameras:  # the raw images of the contract's (compressed) camera topics
        assert f"Value: {camera.topic.removesuffix('/compressed')}" in text
    assert "/executor_node/plan_markers" in text and "Fixed Frame: torso_lift_link" in text
    assert rviz_config(str(REPO_ROOT), "aloha_bimanual").endswith("wall_oss.rviz")


def test_the_tiago_sim_launch_drives_the_tiago_simulation(tmp_path):
    from wall_oss_ros.ros.launch_arguments import declared, node_parameters, typed_arguments

    args = declared("tiago_dual", with_sim=True)
    nodes = node_parameters(typed_arguments({"checkpoint": str(tmp_path)}, args), with_sim=True)
    assert nodes["sim_node"]["robot"] == "tiago" and nodes["sim_node"]["publish_compressed"] is True
    assert set(nodes["sim_node"]) <= NODE_PARAMS["sim_node"] | {"use_sim_time"}
    assert nodes["policy_node"]["instruction"] == "pick up the red block"
    assert nodes["executor_node"]["frame_id"] == "torso_lift_link"  # the tip paths' frame


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None, reason="launch_ros is not installable from pip")
@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_description_loads(path):
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.generate_launch_description().entities


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_each_launch_file_names_a_shipped_contract(path):
    calls = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call) and
             getattr(n.func, "id", "") == "robot_launch_description"]
    assert len(calls) == 1, f"{path.name} builds its description with robot_launch_description()"
    assert (REPO_ROOT / "config" / "robots" / f"{calls[0].args[0].value}.yaml").is_file()


@pytest.mark.parametrize("mode", [{}, {"with_sim": True}, {"with_replay": True}], ids=["robot", "sim", "replay"])
def test_every_node_parameter_the_launch_passes_exists(mode, tmp_path):
    from wall_oss_ros.ros.launch_arguments import declared, node_parameters, typed_arguments

    raw = {"checkpoint": str(tmp_path), "bag": str(tmp_path)}
    nodes = node_parameters(typed_arguments(raw, declared("aloha_bimanual", **mode)), **mode)
    for executable, parameters in nodes.items():
        assert executable in declared_executables(), f"{executable} is not installed"
        unknown = set(parameters) - NODE_PARAMS[executable] - {"use_sim_time"}
        assert not unknown, f"{executable} has no parameters {unknown}"
    if mode.get("with_replay"):  # the replay publishes the contract's robot side only
        assert nodes["bag_replay"]["contract"] == "aloha_bimanual"
    if mode.get("with_sim"):  # the robot waits for the policy, and the policy is told the task
        assert nodes["sim_node"]["wait_for_camera_subscriber"] is True
        assert nodes["policy_node"]["instruction"] == "insert the peg into the socket"
    else:
        assert nodes["policy_node"]["instruction"] == ""  # a robot's task is the user's to say
    from wall_oss_ros.ros.launch_graph import RVIZ_CONFIG

    assert (REPO_ROOT / Path(*RVIZ_CONFIG)).is_file()


def test_arguments_are_typed_and_strings_stay_strings(tmp_path):
    from wall_oss_ros.ros.launch_arguments import declared, node_parameters, typed_arguments

    args = declared("aloha_bimanual", with_sim=True)
    typed = typed_arguments({"checkpoint": str(tmp_path), "instruction": "pick: the cube #2", "device": "yes",
                             "real_time_factor": "1", "rviz": "True"}, args)
    assert typed["instruction"] == "pick: the cube #2" and typed["device"] == "yes"
    assert typed["real_time_factor"] == 1.0 and isinstance(typed["real_time_factor"], float)
    assert typed["rviz"] is True and typed["use_sim_time"] is True and typed["frame_id"] == "world"
    assert typed["speed_scale"] == 1.0
    slow = typed_arguments({"checkpoint": str(tmp_path), "speed_scale": "0.3"}, args)
    assert slow["speed_scale"] == 0.3 and node_parameters(slow, with_sim=True)["executor_node"]["speed_scale"] == 0.3


@pytest.mark.parametrize(("raw", "message"), [
    ({"rviz": "yes"}, "rviz:='yes' is not true or false"),
    ({"frame_id": "a: b"}, "frame_id:='a: b' is not a frame name"),
    ({"contract": "no_such_robot"}, "contract:='no_such_robot': no contract at"),
    ({"checkpoint": "/no/such/dir"}, "checkpoint:='/no/such/dir' does not exist"),
    ({"checkpoint": ""}, "checkpoint is required"),
    ({"rate": "fast"}, "rate:='fast' is not a number"),
    ({"rate": "0"}, "rate:='0' must be > 0"),
    ({"prediction_mode": "diffusion"}, "prediction_mode:='diffusion' is not one of"),
    ({"bag": ""}, "bag is required"),
    ({"speed_scale": "0"}, "speed_scale:='0' must be a number in (0, 1]"),
    ({"speed_scale": "1.5"}, "speed_scale:='1.5' must be a number in (0, 1]"),
    ({"speed_scale": "slow"}, "speed_scale:='slow' must be a number in (0, 1]"),
])
def test_a_bad_argument_is_refused_by_name(raw, message, tmp_path):
    from wall_oss_ros.ros.launch_arguments import LaunchArgumentError, declared, typed_arguments

    with pytest.raises(LaunchArgumentError, match=re.escape(message)):
        typed_arguments({"checkpoint": str(tmp_path), "bag": str(tmp_path), **raw},
                        declared("aloha_bimanual", with_replay=True))


def test_a_replay_machine_needs_no_robot_model_packages():
    """The replay's topics come from the contract's YAML; its kinematics (pkg://gym_aloha/...) are not
    resolved, so a machine without gym-aloha can replay."""
    from wall_oss_ros.core.contract.topics import command_topics, robot_topics

    text = (REPO_ROOT / "config" / "robots" / "aloha_bimanual.yaml").read_text()
    assert "pkg://gym_aloha" in text
    assert robot_topics("aloha_bimanual") == ["/camera/top/image_raw", "/joint_states"]
    assert len(command_topics("aloha_bimanual")) == 4
    assert robot_topics("mobile_manipulator") == sorted(robot_topics("mobile_manipulator"))
    assert {"/left_arm/ee_pose", "/right_arm/ee_pose"} <= set(robot_topics("mobile_manipulator"))


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None, reason="launch_ros is not installable from pip")
def test_a_bad_argument_starts_no_process(tmp_path):
    """With the real launch API: the launch ends on the argument, before any node (none is left orphaned)."""
    import subprocess
    import sys

    runner = tmp_path / "run_launch.py"
    runner.write_text(
        "import sys, launch\n"
        "from launch.actions import IncludeLaunchDescription\n"
        "from launch.launch_description_sources import PythonLaunchDescriptionSource\n"
        "service = launch.LaunchService()\n"
        "service.include_launch_description(IncludeLaunchDescription(PythonLaunchDescriptionSource(sys.argv[1]),"
        " launch_arguments=[tuple(a.split(':=', 1)) for a in sys.argv[2:]]))\n"
        "sys.exit(service.run())\n")
    out = subprocess.run([sys.executable, str(runner), str(REPO_ROOT / "launch" / "robot_bimanual.launch.py"),
                          f"checkpoint:={tmp_path}", "rviz:=yes", "frame_id:=a: b"],
                         capture_output=True, text=True, timeout=60)
    log = out.stdout + out.stderr
    assert "rviz:='yes' is not true or false" in log and "frame_id:='a: b' is not a frame name" in log
    assert "process started" not in log


@pytest.mark.parametrize("graph", sorted((REPO_ROOT / "config" / "graphs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_bringup_graphs_name_real_executables_and_parameters(graph):
    from wall_oss_ros.tools.bringup import parse_graph

    specs, _ = parse_graph(graph)
    for spec in specs:
        unknown = set(spec.parameters) - NODE_PARAMS[spec.executable] - {"use_sim_time"}
        assert not unknown, f"{graph.name}: {spec.executable} has no parameters {unknown}"
