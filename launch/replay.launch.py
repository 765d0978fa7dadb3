"""A recorded bag through policy_node and executor_node (dry run): /clock from the bag, RViz optional.

    ros2 launch wall_oss_ros replay.launch.py bag:=/data/run1 checkpoint:=/data/wall-oss-flow rviz:=true
"""

from wall_oss_ros.ros.launch_graph import robot_launch_description


def generate_launch_description():  # noqa: ANN201 - launch.LaunchDescription
    return robot_launch_description("aloha_bimanual", with_replay=True)
