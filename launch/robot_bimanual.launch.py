"""Bimanual robot: policy_node (GPU) + executor_node (control), optionally RViz.

    ros2 launch wall_oss_ros robot_bimanual.launch.py checkpoint:=/data/wall-oss-flow contract:=aloha_bimanual
"""

from wall_oss_ros.ros.launch_graph import robot_launch_description


def generate_launch_description():  # noqa: ANN201 - launch.LaunchDescription
    return robot_launch_description("aloha_bimanual")
