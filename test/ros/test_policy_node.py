"""policy_node in its own process: frames and joint states in, ActionChunks stamped with a frame's t_obs out."""

from __future__ import annotations

import time

import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState

from test.support.robots import contract, rest_state
from test.support.ros_process import node_process
from test.support.spin import spin_until
from wall_oss_ros.msg import ActionChunk
from wall_oss_ros.ros.conversions import sec_to_stamp, stamp_to_sec

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_chunks_carry_the_t_obs_of_the_frames_used(ros_node, domain_id, tiny_checkpoint):
    c = contract("aloha_bimanual")
    node = node_process("policy_node", domain_id, checkpoint=tiny_checkpoint, instruction="insert the peg",
                        device="cpu")
    camera = ros_node.create_publisher(Image, "/camera/top/image_raw", qos_profile_sensor_data)
    joints = ros_node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
    chunks: list[ActionChunk] = []
    ros_node.create_subscription(ActionChunk, "/policy_node/action_chunk", chunks.append,
                                 QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE))
    rest = rest_state(c).joints
    rgb = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8).tobytes()
    published: list[float] = []
    try:
        deadline = time.monotonic() + 60
        while len(chunks) < 3 and time.monotonic() < deadline:
            t = time.time()
            stamp = sec_to_stamp(t)
            frame = Image(height=480, width=640, encoding="rgb8", step=640 * 3, data=rgb)
            frame.header.stamp = stamp
            camera.publish(frame)
            state = JointState(name=list(rest), position=list(rest.values()))
            state.header.stamp = stamp
            joints.publish(state)
            published.append(stamp_to_sec(stamp))
            spin_until(ros_node, lambda: False, 1 / 30)
    finally:
        node.stop()
    assert len(chunks) >= 3, f"no chunks; policy_node stderr:\n{node.stderr()[-2000:]}"
    for chunk in chunks:
        assert stamp_to_sec(chunk.header.stamp) in published  # t_obs: the stamp of a frame really used
        assert tuple(chunk.action_names) == c.action_names and (chunk.horizon, chunk.dim) == (32, 14)
        assert np.all(np.isfinite(chunk.values)) and chunk.denoising_steps == 10
    ids = [chunk.chunk_id for chunk in chunks]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert len({chunk.header.stamp.sec * 10**9 + chunk.header.stamp.nanosec for chunk in chunks}) == len(chunks)


def test_fast_mode_that_cannot_decode_publishes_no_chunk_and_says_why(ros_node, domain_id, tiny_checkpoint):
    """A random tiny model never answers with decodable FAST tokens: the node reports ERROR and publishes
    nothing (the reference decoder would have returned a zero chunk)."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    c = contract("aloha_bimanual")
    node = node_process("policy_node", domain_id, checkpoint=tiny_checkpoint, instruction="insert the peg",
                        device="cpu", prediction_mode="fast", fast_max_tokens=8)
    camera = ros_node.create_publisher(Image, "/camera/top/image_raw", qos_profile_sensor_data)
    joints = ros_node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
    chunks: list[ActionChunk] = []
    errors: list[str] = []
    reliable = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
    ros_node.create_subscription(ActionChunk, "/policy_node/action_chunk", chunks.append, reliable)
    ros_node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: errors.extend(
        s.message for s in m.status if s.level == DiagnosticStatus.ERROR and "inference failed" in s.message),
        reliable)
    rest = rest_state(c).joints
    rgb = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8).tobytes()
    try:
        deadline = time.monotonic() + 60
        while len(errors) < 3 and time.monotonic() < deadline:
            stamp = sec_to_stamp(time.time())
            frame = Image(height=480, width=640, encoding="rgb8", step=640 * 3, data=rgb)
            frame.header.stamp = stamp
            camera.publish(frame)
            state = JointState(name=list(rest), position=list(rest.values()))
            state.header.stamp = stamp
            joints.publish(state)
            spin_until(ros_node, lambda: False, 1 / 30)
    finally:
        node.stop()
    assert len(errors) >= 3, f"no inference errors reported; policy_node stderr:\n{node.stderr()[-2000:]}"
    assert "no action tokens" in errors[0] and "token budget exhausted" in errors[0]
    assert chunks == []
    assert "fast mode" in node.stderr()


@pytest.mark.parametrize("signals", [1, 2], ids=["ctrl-c", "ctrl-c-twice"])
def test_ctrl_c_mid_inference_exits_cleanly_and_quickly(ros_node, domain_id, tiny_checkpoint, signals):
    """The worker used to be left inside torch at exit: 'terminate called without an active exception'."""
    import os
    import signal

    c = contract("aloha_bimanual")
    node = node_process("policy_node", domain_id, checkpoint=tiny_checkpoint, instruction="insert the peg",
                        device="cpu")
    camera = ros_node.create_publisher(Image, "/camera/top/image_raw", qos_profile_sensor_data)
    joints = ros_node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
    chunks: list[ActionChunk] = []
    ros_node.create_subscription(ActionChunk, "/policy_node/action_chunk", chunks.append,
                                 QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE))
    rest = rest_state(c).joints
    rgb = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8).tobytes()

    def feed() -> None:
        stamp = sec_to_stamp(time.time())
        frame = Image(height=480, width=640, encoding="rgb8", step=640 * 3, data=rgb)
        frame.header.stamp = stamp
        camera.publish(frame)
        state = JointState(name=list(rest), position=list(rest.values()))
        state.header.stamp = stamp
        joints.publish(state)
        spin_until(ros_node, lambda: False, 1 / 30)

    try:
        deadline = time.monotonic() + 60
        while len(chunks) < 2 and time.monotonic() < deadline:
            feed()
        assert len(chunks) >= 2, f"no chunks; stderr:\n{node.stderr()[-2000:]}"
        feed()  # a fresh frame: the worker is computing the next chunk now
        stopped = time.monotonic()
        for _ in range(signals):
            os.kill(node.pid, signal.SIGINT)
            time.sleep(0.05)
        code = node.wait(10.0)
        elapsed = time.monotonic() - stopped
    finally:
        node.stop()
    errors = node.stderr()
    assert code == 0, f"exit code {code}; stderr:\n{errors[-2000:]}"
    assert elapsed < 5.0  # inside launch's SIGINT grace period
    assert "terminate called" not in errors and "Traceback" not in errors, errors[-2000:]
