"""gym-aloha's simulated bimanual robot (MuJoCo, /clock) + policy_node + executor_node, optionally RViz.

    ros2 launch wall_oss_ros sim_aloha.launch.py checkpoint:=/data/wall-oss-flow autostart:=true rviz:=true
"""

from wall_oss_ros.ros.launch_graph import robot_launch_description


def generate_launch_description():  # noqa: ANN201 - launch.LaunchDescription
    return robot_launch_description("aloha_bimanual", with_sim=True)
