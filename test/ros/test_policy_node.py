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
