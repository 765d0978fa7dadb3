"""Best-effort 640×480 frames at 30 Hz and joint states at 100 Hz from another process reach the policy's
observation stage (≥ 98 %) while it infers on sim time, with /clock at 200 Hz as from a simulator or a bag."""

from __future__ import annotations

import signal

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy

from test.support.ros_process import RosProcess, node_process
from test.support.spin import spin_until

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_frames_and_joint_states_reach_the_observation_stage(ros_node, domain_id, tmp_path):
    from wall_oss_ros.tools.make_tiny_checkpoint import write

    ckpt = write(tmp_path / "ckpt", "transformers", "aloha_bimanual", 0)
    policy = node_process("policy_node", domain_id, checkpoint=ckpt, instruction="insert the peg", device="cpu",
                          use_sim_time=True)
    reports: list[dict[str, str]] = []

    def on_diag(msg: DiagnosticArray) -> None:
        reports.extend({kv.key: kv.value for kv in s.values} for s in msg.status
                       if s.name == "wall_oss_ros: observation")

    ros_node.create_subscription(DiagnosticArray, "/diagnostics", on_diag,
                                 QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    robot = None
    try:
        assert spin_until(ros_node, lambda: ros_node.count_publishers("/diagnostics") > 0, 60), \
            f"policy_node not up:\n{policy.stderr()[-1500:]}"
        robot = RosProcess("fake_robot.py", "--camera", "--camera-silent", "--states-with-camera", "--clock-hz", "200",
                           "--duration-s", "60", "--out", str(tmp_path / "r.json"), domain_id=domain_id)
        robot.read_json_line(timeout_s=30)
        # Frames count from when each side has discovered the other: the robot publishes only to a matched
        # reader, and the policy reports the publishers it has matched (once per second of the robot's clock).
        # Discovery is not delivery.
        assert spin_until(ros_node, lambda: reports and reports[-1]["publishers/top"] != "0", 30), reports[-1:]
        robot.popen.send_signal(signal.SIGUSR1)  # the camera and the joint states start
        spin_until(ros_node, lambda: False, 6.0)
        robot.popen.send_signal(signal.SIGUSR1)  # and stop; the clock goes on, and with it the reports
        count_before = len(reports)
        assert spin_until(ros_node, lambda: len(reports) > count_before + 1, 10), "no report after the last frame"
        robot.stop()
        sent = robot.read_json_line(timeout_s=10)
    finally:
        policy.stop()
        if robot is not None:
            robot.stop()
    received = int(reports[-1]["frames_received/top"])
    assert sent["frames"] >= 150
    assert received >= 0.98 * sent["frames"], f"{received} of {sent['frames']} frames reached the observation stage"
    # Joint states are matched to frames by stamp: a node too busy to take them loses the observations they
    # belong to (a multi-threaded rclpy executor busy-polling did, a quarter of them).
    states = int(reports[-1]["joint_states_received"])
    assert sent["states"] >= 500
    assert states >= 0.98 * sent["states"], f"{states} of {sent['states']} joint states reached the policy"
