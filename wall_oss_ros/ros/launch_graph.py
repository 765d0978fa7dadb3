"""The robot launch description shared by launch/*.launch.py (standard ROS 2 Python launch API).

`launch` / `launch_ros` come with ROS from apt; they are imported when a launch file asks, never by the
package otherwise (they are not installable from pip).
"""

from __future__ import annotations

import os
from pathlib import Path

from wall_oss_ros.core.contract import load_contract
from wall_oss_ros.core.resources import config_path


def _contract_file(name: str) -> Path:
    return config_path("robots", f"{name}.yaml")

ARGUMENTS = {
    "contract": (None, "robot contract name (config/robots/) or YAML path"),
    "checkpoint": ("", "WALL-OSS checkpoint directory"),
    "instruction": ("", "default task instruction"),
    "device": ("", "torch device for the policy (empty: cuda if available)"),
    "use_sim_time": ("false", "run on /clock (simulation, bag replay)"),
    "autostart": ("false", "execute chunks as soon as the executor is active (else call ~/start)"),
    "dry_run": ("false", "compute and show plans, never command the controllers"),
    "rviz": ("false", "start RViz with config/rviz/wall_oss.rviz"),
    "frame_id": ("base_link", "frame of the plan markers and stamped commands; RViz's fixed frame"),
}
REPLAY_ARGUMENTS = {
    "bag": ("", "rosbag2 to replay (directory or file)"),
    "rate": ("1.0", "replay speed"),
    "loop": ("false", "replay in a loop"),
}
SIM_ARGUMENTS = {
    "task": ("AlohaInsertion-v0", "gym-aloha task: AlohaInsertion-v0 | AlohaTransferCube-v0"),
    "real_time_factor": ("1.0", "sim time per wall time (the sim publishes /clock)"),
    "render_shadows": ("true", "render shadows (slower on a CPU)"),
}


def robot_launch_description(default_contract: str, with_sim: bool = False, with_replay: bool = False) -> object:
    """policy_node + executor_node for a robot contract, optionally RViz; both self-activate.

    with_sim: also gym-aloha's robot (sim_node, owner of /clock); use_sim_time then defaults to true.
    with_replay: also bag_replay (owner of /clock) with the recorded commands left out, and the executor
    in dry run (previews, status, markers; nothing to controllers).
    """
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
    from launch.conditions import IfCondition
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import LifecycleNode, Node

    from launch import LaunchDescription

    share = get_package_share_directory("wall_oss_ros")
    declared = {**ARGUMENTS, **(SIM_ARGUMENTS if with_sim else {}), **(REPLAY_ARGUMENTS if with_replay else {})}
    if with_replay:
        declared["use_sim_time"] = ("true", ARGUMENTS["use_sim_time"][1])
        declared["dry_run"] = ("true", ARGUMENTS["dry_run"][1])
    if with_sim:
        declared["use_sim_time"] = ("true", ARGUMENTS["use_sim_time"][1])
        declared["frame_id"] = ("world", ARGUMENTS["frame_id"][1])  # the MJCF's root frame
    arg = {name: LaunchConfiguration(name) for name in declared}
    sim = {"use_sim_time": arg["use_sim_time"]}
    simulation = [Node(package="wall_oss_ros", executable="sim_node", name="sim_node", output="screen",
                       parameters=[{"task": arg["task"], "real_time_factor": arg["real_time_factor"],
                                    "render_shadows": arg["render_shadows"], "use_sim_time": False}])
                  ] if with_sim else []
    commands = sorted({g.output.topic for g in load_contract(_contract_file(default_contract)).groups})
    replay = [Node(package="wall_oss_ros", executable="bag_replay", name="bag_replay", output="screen",
                   parameters=[{"bag": arg["bag"], "rate": arg["rate"], "loop": arg["loop"],
                                "topics_exclude": commands, "use_sim_time": False}])
              ] if with_replay else []
    return LaunchDescription([
        *[DeclareLaunchArgument(name, default_value=default if default is not None else default_contract,
                                description=text) for name, (default, text) in declared.items()],
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                               os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE",
                                              os.path.join(share, "config", "dds", "fastdds_loopback.xml"))),
        LifecycleNode(package="wall_oss_ros", executable="policy_node", name="policy_node", namespace="",
                      output="screen", arguments=["--activate"],
                      parameters=[{"contract": arg["contract"], "checkpoint": arg["checkpoint"],
                                   "instruction": arg["instruction"], "device": arg["device"], **sim}]),
        LifecycleNode(package="wall_oss_ros", executable="executor_node", name="executor_node", namespace="",
                      output="screen", arguments=["--activate"],
                      parameters=[{"contract": arg["contract"], "autostart": arg["autostart"],
                                   "dry_run": arg["dry_run"], "frame_id": arg["frame_id"], **sim}]),
        *simulation,
        *replay,
        Node(package="rviz2", executable="rviz2", name="rviz2", condition=IfCondition(arg["rviz"]),
             arguments=["-d", os.path.join(share, "config", "rviz", "wall_oss.rviz"), "-f", arg["frame_id"]],
             parameters=[sim]),
    ])
