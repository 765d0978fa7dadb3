"""Best-effort 640×480 frames at 30 Hz from another process reach the policy's observation stage (≥ 98 %)."""

from __future__ import annotations

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
    received: list[int] = []

    def on_diag(msg: DiagnosticArray) -> None:
        for s in msg.status:
            if s.name == "wall_oss_ros: observation":
                received.append(int({kv.key: kv.value for kv in s.values}["frames_received/top"]))

    ros_node.create_subscription(DiagnosticArray, "/diagnostics", on_diag,
                                 QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    try:
        assert spin_until(ros_node, lambda: len(received) > 0, 60), f"policy_node not up:\n{policy.stderr()[-1500:]}"
        robot = RosProcess("fake_robot.py", "--camera", "--duration-s", "6", "--out", str(tmp_path / "r.json"),
                           domain_id=domain_id)
        robot.read_json_line(timeout_s=30)
        spin_until(ros_node, lambda: robot.popen.poll() is not None, 30)
        published = robot.read_json_line(timeout_s=10)["frames"]
        count_before = len(received)
        spin_until(ros_node, lambda: len(received) > count_before + 1, 5)  # a report after the last frame
    finally:
        policy.stop()
    assert published >= 150
    assert received[-1] >= 0.98 * published, f"{received[-1]} of {published} frames reached the observation stage"
