"""Best-effort 640×480 frames at 30 Hz from another process reach the policy's observation stage (≥ 98 %)."""

from __future__ import annotations

import signal

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy

from test.support.ros_process import RosProcess
from test.support.spin import spin_until

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_camera_frames_reach_the_observation_stage(ros_node, domain_id, tmp_path):
    from wall_oss_ros.tools.make_tiny_checkpoint import write

    ckpt = write(tmp_path / "ckpt", "transformers", "aloha_bimanual", 0)
    policy = RosProcess("../../wall_oss_ros/ros/policy_node.py", "--activate", "--ros-args", "-p",
                        f"checkpoint:={ckpt}", "-p", "instruction:=insert the peg", "-p", "device:=cpu",
                        domain_id=domain_id)
    reports: list[dict[str, str]] = []

    def on_diag(msg: DiagnosticArray) -> None:
        reports.extend({kv.key: kv.value for kv in s.values} for s in msg.status
                       if s.name == "wall_oss_ros: observation")

    ros_node.create_subscription(DiagnosticArray, "/diagnostics", on_diag,
                                 QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    robot = None
    try:
        assert spin_until(ros_node, lambda: len(reports) > 0, 60), f"policy_node not up:\n{policy.stderr()[-1500:]}"
        robot = RosProcess("fake_robot.py", "--camera", "--camera-silent", "--duration-s", "60", "--out",
                           str(tmp_path / "r.json"), domain_id=domain_id)
        robot.read_json_line(timeout_s=30)
        # Frames count from when each side has discovered the other: the robot publishes only to a matched
        # reader, and the policy reports the publishers it has matched. Discovery is not delivery.
        assert spin_until(ros_node, lambda: reports[-1]["publishers/top"] != "0", 30), reports[-1]
        robot.popen.send_signal(signal.SIGUSR1)  # the camera starts
        spin_until(ros_node, lambda: False, 6.0)
        robot.stop()
        published = robot.read_json_line(timeout_s=10)["frames"]
        count_before = len(reports)
        spin_until(ros_node, lambda: len(reports) > count_before + 1, 5)  # a report after the last frame
    finally:
        policy.stop()
        if robot is not None:
            robot.stop()
    received = int(reports[-1]["frames_received/top"])
    assert published >= 150
    assert received >= 0.98 * published, f"{received} of {published} frames reached the observation stage"
