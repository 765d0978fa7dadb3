"""Unusable inputs (missing joint names, NaN state, unknown image encoding) reach real nodes in their own
processes: each gives a diagnostic ERROR that names the problem, and no chunk and no command follows."""

from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory

from test.support.robots import contract, rest_state
from test.support.ros_process import node_process
from test.support.spin import spin_until
from wall_oss_ros.msg import ActionChunk
from wall_oss_ros.ros.conversions import sec_to_stamp

pytestmark = [pytest.mark.ros, pytest.mark.slow]
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


def test_unusable_inputs_give_an_error_and_nothing_downstream(ros_node, domain_id, tiny_checkpoint):
    c = contract("aloha_bimanual")
    policy = node_process("policy_node", domain_id, checkpoint=tiny_checkpoint, device="cpu",
                          instruction="insert the peg")
    executor = node_process("executor_node", domain_id, autostart=True)
    camera = ros_node.create_publisher(Image, "/camera/top/image_raw", qos_profile_sensor_data)
    joints = ros_node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
    events: list[tuple[float, str, object]] = []
    ros_node.create_subscription(ActionChunk, "/policy_node/action_chunk",
                                 lambda m: events.append((time.time(), "chunk", m)), RELIABLE)
    for g in c.groups:
        ros_node.create_subscription(JointTrajectory, g.output.topic,
                                     lambda m: events.append((time.time(), "command", m)), 10)

    def on_diag(msg: DiagnosticArray) -> None:
        events.extend((time.time(), "diag", s) for s in msg.status)

    ros_node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, RELIABLE)
    rest = dict(rest_state(c).joints)
    rgb = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8).tobytes()
    depth16 = np.zeros((480, 640), dtype=np.uint16).tobytes()

    def publish(names: list[str], positions: list[float], encoding: str) -> None:
        stamp = sec_to_stamp(time.time())
        if encoding == "rgb8":
            frame = Image(height=480, width=640, encoding="rgb8", step=640 * 3, data=rgb)
        else:
            frame = Image(height=480, width=640, encoding=encoding, step=640 * 2, data=depth16)
        frame.header.stamp = stamp
        state = JointState(name=names, position=positions)
        state.header.stamp = stamp
        camera.publish(frame)
        joints.publish(state)

    nan_state = list(rest.values())
    nan_state[3] = float("nan")
    left_only = [n for n in rest if n.startswith("vx300s_left")]
    phases = {  # name → (joint names, positions, encoding, expected words in the errors)
        "missing joint names": (left_only, [rest[n] for n in left_only], "rgb8", "lack"),
        "NaN state": (list(rest), nan_state, "rgb8", "not finite"),
        "unknown encoding": (list(rest), list(rest.values()), "16UC1", "encoding"),
        "valid": (list(rest), list(rest.values()), "rgb8", ""),
    }
    windows: dict[str, tuple[float, float]] = {}
    try:
        assert spin_until(ros_node, lambda: camera.get_subscription_count() > 0 and
                          joints.get_subscription_count() >= 2, 60), \
            f"nodes did not come up:\n{policy.stderr()[-2000:]}\n{executor.stderr()[-2000:]}"
        for name, (names, positions, encoding, _) in phases.items():
            start = time.time()
            duration = 4.0 if name != "valid" else 60.0
            while time.time() - start < duration:
                publish(names, positions, encoding)
                spin_until(ros_node, lambda: False, 1 / 30)
                if name == "valid" and any(kind == "chunk" and t > start for t, kind, _ in events):
                    break
            windows[name] = (start, time.time())
    finally:
        policy.stop()
        executor.stop()

    def during(phase: str, kind: str) -> list:
        a, b = windows[phase]
        return [m for t, k, m in events if k == kind and a < t <= b]

    for phase, (_, _, _, words) in phases.items():
        if phase == "valid":
            continue
        errors = [s for s in during(phase, "diag") if s.level == DiagnosticStatus.ERROR and words in s.message]
        assert not during(phase, "chunk"), f"{phase}: a chunk was computed from unusable input"
        assert any(s.name == "wall_oss_ros: observation" for s in errors), \
            f"{phase}: no observation ERROR naming it; got {[(s.name, s.message) for s in during(phase, 'diag')]}"
        if phase != "unknown encoding":  # the executor does not read images
            assert not during(phase, "command"), f"{phase}: a command was sent from an unusable measured state"
            assert any(s.name == "wall_oss_ros: executor" for s in errors), f"{phase}: no executor ERROR naming it"
    assert during("valid", "chunk"), f"valid input gave no chunk: this test could not see one; " \
        f"{sorted({(s.name, s.message) for s in during('valid', 'diag')})}"
