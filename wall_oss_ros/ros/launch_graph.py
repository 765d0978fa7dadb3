"""The robot launch description shared by launch/*.launch.py (standard ROS 2 Python launch API).

Arguments are declared from launch_arguments and checked in an OpaqueFunction before any node is created:
a wrong argument ends the launch with every problem named and leaves no process behind (the nodes used
to start first and keep running, orphaned, after launch had exited on the error). Parameter values are
passed typed; strings as ParameterValue(value_type=str), so launch_ros does not parse them as YAML.
The DDS profile is the user's: the `dds_profile` argument, else FASTDDS_DEFAULT_PROFILES_FILE as set
(scripts/env.sh sets the loopback profile in the development environment), else the middleware default.

`launch` / `launch_ros` come with ROS from apt; they are imported when a launch file asks, never by the
package otherwise (they are not installable from pip).
"""

from __future__ import annotations

import os

from wall_oss_ros.ros.launch_arguments import declared, node_parameters, typed_arguments

RVIZ_CONFIG = ("config", "rviz", "wall_oss.rviz")  # the default; config/rviz/<contract>.rviz where one exists


def rviz_config(share: str, contract: str) -> str:
    """The RViz configuration for a contract: its own (its cameras, its markers' frame), else the default."""
    own = os.path.join(share, "config", "rviz", f"{os.path.splitext(os.path.basename(contract))[0]}.rviz")
    return own if os.path.isfile(own) else os.path.join(share, *RVIZ_CONFIG)


def _ros_values(parameters: dict[str, object]) -> dict[str, object]:
    from launch_ros.parameter_descriptions import ParameterValue

    return {k: ParameterValue(v, value_type=str) if isinstance(v, str) else v for k, v in parameters.items()}


def _graph(context: object, default_contract: str, with_sim: bool, with_replay: bool) -> list[object]:
    """The nodes, built only from validated, typed arguments (raises LaunchArgumentError first)."""
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import SetEnvironmentVariable
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import LifecycleNode, Node

    args = declared(default_contract, with_sim, with_replay)
    typed = typed_arguments({a.name: LaunchConfiguration(a.name).perform(context) for a in args}, args)
    nodes = node_parameters(typed, with_sim, with_replay)
    share = get_package_share_directory("wall_oss_ros")
    actions: list[object] = []
    if typed["dds_profile"]:
        actions.append(SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", str(typed["dds_profile"])))
    for name in ("policy_node", "executor_node"):
        actions.append(LifecycleNode(package="wall_oss_ros", executable=name, name=name, namespace="",
                                     output="screen", arguments=["--activate"],
                                     parameters=[_ros_values(nodes[name])]))
    for name in ("sim_node", "bag_replay"):
        if name in nodes:
            actions.append(Node(package="wall_oss_ros", executable=name, name=name, output="screen",
                                parameters=[_ros_values(nodes[name])]))
    if typed["rviz"]:
        actions.append(Node(package="rviz2", executable="rviz2", name="rviz2",
                            arguments=["-d", rviz_config(share, str(typed["contract"])), "-f", str(typed["frame_id"])],
                            parameters=[{"use_sim_time": typed["use_sim_time"]}]))
    return actions


def robot_launch_description(default_contract: str, with_sim: bool = False, with_replay: bool = False) -> object:
    """policy_node + executor_node for a robot contract, optionally RViz; both self-activate.

    with_sim: also gym-aloha's robot (sim_node, owner of /clock); use_sim_time then defaults to true.
    with_replay: also bag_replay (owner of /clock) with the contract's controller commands left out, and the
    executor in dry run (previews, status, markers; nothing to controllers).
    """
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    from launch import LaunchDescription

    return LaunchDescription([
        *[DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
          for a in declared(default_contract, with_sim, with_replay)],
        OpaqueFunction(function=_graph, args=[default_contract, with_sim, with_replay]),
    ])
