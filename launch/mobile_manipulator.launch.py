"""Mobile manipulator (two end-effector arms, base, lift, head): policy_node + executor_node, optionally RViz.

    ros2 launch wall_oss_ros mobile_manipulator.launch.py checkpoint:=/data/wall-oss-flow
"""

from wall_oss_ros.ros.launch_graph import robot_launch_description


def generate_launch_description():  # noqa: ANN201 - launch.LaunchDescription
    return robot_launch_description("mobile_manipulator")
