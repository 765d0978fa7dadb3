"""The robot launch description shared by launch/*.launch.py (standard ROS 2 Python launch API).

`launch` / `launch_ros` come with ROS from apt; they are imported when a launch file asks, never by the
package otherwise (they are not installable from pip).
"""

from __future__ import annotations

import os

ARGUMENTS = {
    "contract": (None, "robot contract name (config/robots/) or YAML path"),
    "checkpoint": ("", "WALL-OSS checkpoint directory"),
    "instruction": ("", "default task instruction"),
    "device": ("", "torch device for the policy (empty: cuda if available)"),
    "use_sim_time": ("false", "run on /clock (simulation, bag replay)"),
    "autostart": ("false", "execute chunks as soon as the executor is active (else call ~/start)"),
    "dry_run": ("false", "compute and show plans, never command the controllers"),
    "rviz": ("false", "start RViz with config/rviz/wall_oss.rviz"),
}


def robot_launch_description(default_contract: str) -> object:
    """policy_node + executor_node for a robot contract, optionally RViz; both self-activate."""
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
    from launch.conditions import IfCondition
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import LifecycleNode, Node

    from launch import LaunchDescription

    share = get_package_share_directory("wall_oss_ros")
    arg = {name: LaunchConfiguration(name) for name in ARGUMENTS}
    sim = {"use_sim_time": arg["use_sim_time"]}
    return LaunchDescription([
        *[DeclareLaunchArgument(name, default_value=default if default is not None else default_contract,
                                description=text) for name, (default, text) in ARGUMENTS.items()],
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
                                   "dry_run": arg["dry_run"], **sim}]),
        Node(package="rviz2", executable="rviz2", name="rviz2", condition=IfCondition(arg["rviz"]),
             arguments=["-d", os.path.join(share, "config", "rviz", "wall_oss.rviz")], parameters=[sim]),
    ])
