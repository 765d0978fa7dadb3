"""The wall-x server's msgpack-numpy frames: ours are msgpack-numpy's byte for byte both ways, and a frame
asking for a pickled object, a structured array or more bytes than it has is refused, never decoded."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wall_oss_ros.policy.remote import wallx_codec
from wall_oss_ros.policy.remote.openpi_codec import ProtocolError

msgpack_numpy = pytest.importorskip("msgpack_numpy", reason="msgpack-numpy (make setup installs it)")

POSE = np.array([0.31, -0.12, 0.25, 0.0, 1.2, -0.4, 0.8])  # x, y, z, roll, pitch, yaw, gripper


def message() -> dict:
    """What a wall-x request and response carry: poses, a chunk, a string, a scalar."""
    return {"follow1_pos": POSE, "follow2_pos": -POSE.astype(np.float32), "prompt": "fold the towel",
            "predict_action": np.arange(32 * 14, dtype=np.float32).reshape(32, 14), "dof": np.int64(14),
            "batch": [np.zeros((0, 7)), np.array([True, False])]}


def test_frames_are_msgpack_numpys_byte_for_byte_both_ways():
    ours = wallx_codec.packb(message())
    assert ours == msgpack_numpy.packb(message())
    for decoded in (wallx_codec.unpackb(msgpack_numpy.packb(message())), msgpack_numpy.unpackb(ours)):
        for key in ("follow1_pos", "follow2_pos", "predict_action"):
            np.testing.assert_array_equal(decoded[key], message()[key])
            assert decoded[key].dtype == message()[key].dtype
        assert decoded["prompt"] == "fold the towel" and decoded["dof"] == np.int64(14)
        assert decoded["batch"][0].shape == (0, 7) and decoded["batch"][1].tolist() == [True, False]


def test_a_non_contiguous_array_is_sent_as_its_values():
    view = np.arange(24.0).reshape(4, 6)[:, ::2]
    assert wallx_codec.packb(view) == msgpack_numpy.packb(view)
    np.testing.assert_array_equal(wallx_codec.unpackb(wallx_codec.packb(view)), view)


def _array(**fields) -> bytes:
    frame = {b"nd": True, b"type": "<f8", b"kind": b"", b"shape": (1,), b"data": b"\0" * 8}
    frame.update({k.encode(): v for k, v in fields.items()})
    return msgpack_numpy.packb(frame)


PICKLED = b"\x80\x04K\x01."  # a pickle (of 1), as an object array's data is written


@pytest.mark.parametrize(("frame", "text"), [
    (b"\xc1", "malformed"),
    ("text", "binary frame"),
    (_array(kind=b"O", type="|O", data=PICKLED), "kind"),
    (msgpack_numpy.packb(np.zeros(2, dtype=[("a", "<f4"), ("b", "<i2")])), "kind"),
    (_array(type="|O"), "dtype"),
    (_array(shape=(2,)), "needs 16"),
    (_array(shape=(-1,)), "shape"),
    (_array(shape=(2**40, 2**40)), "needs"),
    (_array(data="text"), "bytes data"),
    (msgpack_numpy.packb({b"nd": False, b"type": "<f8", b"data": b"\0" * 4}), "needs 8"),
    (msgpack_numpy.packb(1 + 2j), "complex"),
])
def test_a_malformed_frame_is_a_protocol_error_saying_what(frame, text):
    with pytest.raises(ProtocolError, match=text):
        wallx_codec.unpackb(frame)


def test_an_object_array_is_not_sent_either():
    with pytest.raises(ProtocolError, match="numeric and bool"):
        wallx_codec.packb({"bad": np.array([object()])})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=512), cut=st.integers(0, 4096), flip=st.integers(0, 4096))
def test_any_bytes_decode_or_raise_protocol_error(data, cut, flip):
    valid = bytearray(wallx_codec.packb(message()))
    valid[flip % len(valid)] ^= 0xFF
    for frame in (data, bytes(valid[:cut]), bytes(valid)):
        with contextlib.suppress(ProtocolError):  # anything else fails the test
            wallx_codec.unpackb(frame)
