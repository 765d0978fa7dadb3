"""Message conversions: images of every supported encoding, chunks and statuses both ways, commands."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import CompressedImage, Image, JointState

from test.support.robots import contract
from wall_oss_ros.core.contract import GroupKind, OutputKind
from wall_oss_ros.core.executor_types import GroupCommand
from wall_oss_ros.policy.backend import ChunkResult
from wall_oss_ros.ros.conversions import (
    ConversionError,
    chunk_from_msg,
    chunk_to_msg,
    command_to_msg,
    image_to_rgb,
    joint_positions,
    sec_to_stamp,
    stamp_to_sec,
)


def raw_image(rgb: np.ndarray, encoding: str, pad: int = 0) -> Image:
    pixels = {"rgb8": rgb, "bgr8": rgb[:, :, ::-1], "mono8": rgb[:, :, :1]}[encoding]
    h, w, c = pixels.shape
    rows = np.zeros((h, w * c + pad), dtype=np.uint8)
    rows[:, : w * c] = pixels.reshape(h, w * c)
    return Image(height=h, width=w, encoding=encoding, step=w * c + pad, data=rows.tobytes())


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(0, 7), st.sampled_from(["rgb8", "bgr8"]))
def test_raw_images_decode_to_rgb(h, w, pad, encoding):
    rgb = np.random.default_rng(h * 100 + w).integers(0, 255, (h, w, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_rgb(raw_image(rgb, encoding, pad)), rgb)


def test_mono_becomes_three_equal_channels():
    rgb = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    out = image_to_rgb(raw_image(rgb, "mono8", pad=3))
    assert out.shape == (5, 7, 3) and np.all(out == rgb[:, :, :1])


@pytest.mark.parametrize("fmt", [".png", ".jpg"])
def test_compressed_images_decode(fmt):
    rgb = np.random.default_rng(1).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    _, data = cv2.imencode(fmt, rgb[:, :, ::-1])
    out = image_to_rgb(CompressedImage(format=fmt[1:], data=data.tobytes()))
    assert out.shape == rgb.shape
    if fmt == ".png":
        np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("msg", [
    Image(height=2, width=2, encoding="16UC1", step=4, data=bytes(8)),
    Image(height=4, width=4, encoding="rgb8", step=12, data=bytes(10)),
    CompressedImage(format="jpeg", data=b"not an image"),
    CompressedImage(format="jpeg", data=b""),
], ids=["encoding", "truncated", "corrupt", "empty"])
def test_bad_images_raise(msg):
    with pytest.raises(ConversionError):
        image_to_rgb(msg)


def test_joint_state_lengths_must_match():
    assert joint_positions(JointState(name=["a", "b"], position=[1.0, 2.0])) == {"a": 1.0, "b": 2.0}
    with pytest.raises(ConversionError, match="2 names but 1 positions"):
        joint_positions(JointState(name=["a", "b"], position=[1.0]))


@given(st.floats(0, 2e9, allow_nan=False))
def test_stamps_round_trip_to_the_nanosecond(t):
    assert abs(stamp_to_sec(sec_to_stamp(t)) - t) <= 1e-9 * max(1.0, t) + 1e-9


def test_chunk_round_trip():
    c = contract("aloha_bimanual")
    values = np.random.default_rng(2).normal(size=(32, 14))
    result = ChunkResult(values, c.action_names, c.dt_s, c.action_names, values[0], 100.5, 100.6, 10, 3, "pick")
    chunk = chunk_from_msg(chunk_to_msg(result, 42, t_obs=100.25))
    assert chunk.chunk_id == 42 and chunk.t_obs == pytest.approx(100.25, abs=1e-9)
    np.testing.assert_array_equal(chunk.values, values)
    assert chunk.names == c.action_names and chunk.rtc_prefix_steps == 3
    msg = chunk_to_msg(result, 42, t_obs=100.25)
    msg.values = msg.values[:-1]
    with pytest.raises(ConversionError, match="values for horizon"):
        chunk_from_msg(msg)


def test_commands_become_controller_messages():
    joint = GroupCommand("left_arm", GroupKind.JOINT_POSITION, ("j1", "j2"), np.array([0.1, 0.2]),
                         np.array([1.0, 2.0]), np.zeros(2))
    traj = command_to_msg(joint, OutputKind.JTC, "", sec_to_stamp(1.0), 0.01)
    assert traj.joint_names == ["j1", "j2"] and list(traj.points[0].positions) == [0.1, 0.2]
    assert traj.points[0].time_from_start.nanosec == 10_000_000
    assert list(command_to_msg(joint, OutputKind.FORWARD_POSITION, "", sec_to_stamp(1.0), 0.01).data) == [0.1, 0.2]
    base = GroupCommand("base", GroupKind.BASE_TWIST, ("vx", "wz"), np.zeros(0), np.array([0.3, -0.2]), np.zeros(2))
    twist = command_to_msg(base, OutputKind.TWIST_STAMPED, "base_link", sec_to_stamp(2.0), 0.01)
    assert (twist.twist.linear.x, twist.twist.linear.y, twist.twist.angular.z) == (0.3, 0.0, -0.2)
    assert twist.header.frame_id == "base_link"
    ee = GroupCommand("left_ee", GroupKind.EE_POSE, ("x",), np.array([1, 2, 3, 0, 0, 0, 1.0]), np.zeros(6),
                      np.zeros(6))
    pose = command_to_msg(ee, OutputKind.POSE_STAMPED, "base_link", sec_to_stamp(2.0), 0.01)
    assert (pose.pose.position.z, pose.pose.orientation.w) == (3.0, 1.0)
