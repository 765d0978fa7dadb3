"""TIAGo++ simulated in MuJoCo (sim_node robot:=tiago, /clock) + policy_node + executor_node, optionally RViz.
The 26-D tiago_dual contract: both arms' end-effector actions through IK to their trajectory controllers,
the Hey5 hands, the diff-drive base on /mobile_base_controller/cmd_vel, torso lift and head.

    ros2 launch wall_oss_ros sim_tiago.launch.py checkpoint:=/data/wall-oss-0.5 autostart:=true rviz:=true
"""

from wall_oss_ros.ros.launch_graph import robot_launch_description


def generate_launch_description():  # noqa: ANN201 - launch.LaunchDescription
    return robot_launch_description("tiago_dual", with_sim=True)
