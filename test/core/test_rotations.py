"""Rotation conversions agree with scipy; the 6-D layout is WALL-X's (first two rows)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from wall_oss_ros.core.rotations import (
    compose_relative,
    continuous_quaternions,
    matrix_to_rot6d,
    quat_to_rot6d,
    rot6d_to_matrix,
    rot6d_to_quat,
    rot6d_to_rotvec,
    rotvec_to_rot6d,
)

quats = st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(lambda q: np.linalg.norm(q) > 0.1)


def rot(q: list[float]) -> Rotation:
    return Rotation.from_quat(np.array(q) / np.linalg.norm(q))


@settings(max_examples=200)
@given(quats)
def test_roundtrips_agree_with_scipy(q):
    r = rot(q)
    r6 = matrix_to_rot6d(r.as_matrix())
    np.testing.assert_allclose(r6, r.as_matrix()[:2].reshape(6), atol=1e-12)
    np.testing.assert_allclose(rot6d_to_matrix(r6), r.as_matrix(), atol=1e-9)
    q_back = rot6d_to_quat(r6)
    assert abs(abs(np.dot(q_back, r.as_quat())) - 1) < 1e-9
    np.testing.assert_allclose(quat_to_rot6d(r.as_quat()), r6, atol=1e-9)
    assert (Rotation.from_rotvec(rot6d_to_rotvec(r6)) * r.inv()).magnitude() < 1e-7
    np.testing.assert_allclose(rotvec_to_rot6d(r.as_rotvec()), r6, atol=1e-9)


@settings(max_examples=200)
@given(st.lists(st.floats(-10, 10), min_size=6, max_size=6))
def test_gram_schmidt_gives_a_proper_rotation_or_refuses(r6):
    r6 = np.array(r6)
    try:
        m = rot6d_to_matrix(r6)
    except ValueError:
        a1, a2 = r6[:3], r6[3:]
        assert np.linalg.norm(a1) < 1e-3 or np.linalg.norm(np.cross(a1 / np.linalg.norm(a1), a2)) < 1e-3
        return
    np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(m) == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(m[0], r6[:3] / np.linalg.norm(r6[:3]), atol=1e-9)  # first row kept


def test_6d_is_the_wall_x_layout():
    roll, pitch, yaw = 0.3, -0.4, 1.1
    r = Rotation.from_euler("ZYX", [yaw, pitch, roll]).as_matrix()  # R = Rz(yaw) Ry(pitch) Rx(roll)
    expected = [r[0, 0], r[0, 1], r[0, 2], r[1, 0], r[1, 1], r[1, 2]]
    np.testing.assert_allclose(matrix_to_rot6d(r), expected)


@settings(max_examples=100)
@given(quats, quats)
def test_relative_composition_matches_scipy(q_obs, q_delta):
    obs, delta = rot(q_obs), rot(q_delta)
    np.testing.assert_allclose(compose_relative(obs.as_matrix(), delta.as_matrix(), "base"),
                               (delta * obs).as_matrix(), atol=1e-9)
    np.testing.assert_allclose(compose_relative(obs.as_matrix(), delta.as_matrix(), "tool"),
                               (obs * delta).as_matrix(), atol=1e-9)
    with pytest.raises(ValueError):
        compose_relative(obs.as_matrix(), delta.as_matrix(), "world")


@settings(max_examples=100)
@given(st.lists(quats, min_size=2, max_size=20), st.lists(st.booleans(), min_size=20, max_size=20))
def test_continuous_quaternions_never_flip(qs, flips):
    q = np.array([np.array(x) / np.linalg.norm(x) for x in qs])
    signed = np.array([-x if f else x for x, f in zip(q, flips, strict=False)])
    out = continuous_quaternions(signed)
    assert np.all(np.sum(out[1:] * out[:-1], axis=1) >= 0)
    for a, b in zip(out, q, strict=True):
        assert abs(abs(np.dot(a, b)) - 1) < 1e-12  # same rotation


@settings(max_examples=300)
@given(quats, st.floats(0.0, 3.1))
def test_single_rotation_closed_forms_agree_with_scipy(q, angle):
    from wall_oss_ros.core.rotations import (
        quat_multiply,
        quat_to_matrix_one,
        rot6d_to_matrix_one,
        rotvec_to_quat_one,
    )

    r = rot(q)
    np.testing.assert_allclose(quat_to_matrix_one(r.as_quat()), r.as_matrix(), atol=1e-12)
    np.testing.assert_allclose(rot6d_to_matrix_one(matrix_to_rot6d(r.as_matrix()) * 3.0), r.as_matrix(), atol=1e-12)
    axis = r.as_rotvec() / max(np.linalg.norm(r.as_rotvec()), 1e-12)
    rv = axis * angle  # any angle, small ones included
    qr = rotvec_to_quat_one(rv)
    assert abs(abs(np.dot(qr, Rotation.from_rotvec(rv).as_quat())) - 1) < 1e-12
    other = rot(list(reversed(q)))
    np.testing.assert_allclose(quat_to_matrix_one(quat_multiply(r.as_quat(), other.as_quat())),
                               (r * other).as_matrix(), atol=1e-12)
    from wall_oss_ros.core.rotations import matrix_to_quat_one, quat_to_rotvec_one

    q_one = matrix_to_quat_one(r.as_matrix())
    assert abs(abs(np.dot(q_one, r.as_quat())) - 1) < 1e-12
    np.testing.assert_allclose(quat_to_rotvec_one(Rotation.from_rotvec(rv).as_quat()), rv, atol=1e-9)
    np.testing.assert_allclose(quat_to_rotvec_one(-Rotation.from_rotvec(rv).as_quat()), rv, atol=1e-9)
    for bad in ([0, 0, 0, 1, 0, 0], [1, 0, 0, 2, 0, 0], [np.nan] * 6):
        with pytest.raises(ValueError):
            rot6d_to_matrix_one(np.array(bad, dtype=float))
