"""sim_node in its own process: sim time on /clock, joint states and camera frames, commands like ros2_control."""

from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Duration
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from test.support.ros_process import RosProcess
from test.support.spin import spin_until
from wall_oss_ros.ros.conversions import stamp_to_sec
from wall_oss_ros.sim.aloha_sim import JOINT_NAMES

pytestmark = [pytest.mark.ros, pytest.mark.slow]
LEFT_ARM = [n for n in JOINT_NAMES if n.startswith("vx300s_left/") and not n.endswith("gripper")]


def test_sim_time_state_camera_and_commands(ros_node, domain_id):
    sim = RosProcess("../../wall_oss_ros/ros/sim_node.py", "--ros-args", "-p", "real_time_factor:=0.0", "-p",
                     "camera_hz:=5.0", "-p", "render_shadows:=false", "-p", "camera_width:=320", "-p",
                     "camera_height:=240", domain_id=domain_id)
    clock: list[float] = []
    states: list[JointState] = []
    images: list[Image] = []
    paths: list[str] = []
    ros_node.create_subscription(Clock, "/clock", lambda m: clock.append(stamp_to_sec(m.clock)), 10)
    ros_node.create_subscription(JointState, "/joint_states", states.append, 10)
    ros_node.create_subscription(Image, "/camera/top/image_raw", images.append, qos_profile_sensor_data)
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    ros_node.create_subscription(String, "/sim_node/model_path", lambda m: paths.append(m.data), latched)
    jtc = ros_node.create_publisher(JointTrajectory, "/left_arm_controller/joint_trajectory", 10)
    forward = ros_node.create_publisher(Float64MultiArray, "/right_arm_controller/commands", 10)
    try:
        assert spin_until(ros_node, lambda: len(states) > 5 and images and paths, 60), sim.stderr()[-2000:]
        assert spin_until(ros_node, lambda: jtc.get_subscription_count() > 0 and forward.get_subscription_count(), 10)
        assert list(states[-1].name) == list(JOINT_NAMES)
        start = dict(zip(states[-1].name, states[-1].position, strict=True))
        # Waist of the left arm to +0.4 rad over 0.5 s (stamp 0: from receipt); right waist to -0.4 at once.
        target = [start[n] + (0.4 if n.endswith("waist") else 0.0) for n in LEFT_ARM]
        jtc.publish(JointTrajectory(joint_names=LEFT_ARM, points=[JointTrajectoryPoint(
            positions=target, time_from_start=Duration(sec=0, nanosec=500_000_000))]))
        right = [start[n.replace("left", "right")] for n in LEFT_ARM]
        right[0] = -0.4
        forward.publish(Float64MultiArray(data=right))
        # A malformed trajectory (NaN) is refused: the robot keeps following the valid one.
        jtc.publish(JointTrajectory(joint_names=LEFT_ARM, points=[JointTrajectoryPoint(
            positions=[float("nan")] * 6, time_from_start=Duration(sec=1))]))
        t0 = clock[-1]
        assert spin_until(ros_node, lambda: clock[-1] > t0 + 2.0, 60)
    finally:
        sim.stop()
    stamps = np.array([stamp_to_sec(s.header.stamp) for s in states])
    assert np.all(np.diff(clock) > 0) and np.all(np.diff(stamps) > 0)  # sim time only moves forward
    assert 0.005 <= np.median(np.diff(stamps)) <= 0.0101  # 100 Hz of sim time
    last = dict(zip(states[-1].name, states[-1].position, strict=True))
    assert last["vx300s_left/waist"] == pytest.approx(start["vx300s_left/waist"] + 0.4, abs=0.02)
    assert last["vx300s_right/waist"] == pytest.approx(-0.4, abs=0.02)
    assert all(np.isfinite(states[-1].position))
    image = images[-1]
    assert (image.height, image.width, image.encoding) == (240, 320, "rgb8")
    pixels = np.frombuffer(bytes(image.data), dtype=np.uint8)
    assert pixels.size == 240 * 320 * 3 and pixels.std() > 5  # a rendered scene, not a blank frame
    assert paths and paths[0].endswith("bimanual_viperx_insertion.xml")
    assert "refused" in sim.stderr()
