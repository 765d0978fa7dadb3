"""Arm IK on a real robot model: TIAGo++'s left arm (7 DoF, example-robot-data's URDF) with pink's QP.

Against pinocchio's own forward kinematics of the full model; for any target the command stays finite and
within the joint limits; reachable targets are reached from a warm start; MoveIt Servo's singularity rule
brings the speed scale to zero where the condition number crosses the stop threshold."""

from __future__ import annotations

from functools import cache

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wall_oss_ros.core.inverse_kinematics import ArmIk, IkConfig, IkStatus, SingularityStatus, singularity_scale
from wall_oss_ros.core.resources import package_share

JOINTS = tuple(f"arm_left_{i}_joint" for i in range(1, 8))
BASE, TIP = "base_footprint", "arm_left_tool_link"
TORSO = {"torso_lift_joint": 0.2}
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def urdf() -> str:
    return str(package_share("example-robot-data") / "robots" / "tiago_description" / "robots" / "tiago_dual.urdf")


@cache
def arm() -> ArmIk:
    return ArmIk(urdf(), JOINTS, BASE, TIP, TORSO)


@cache
def full_model():  # a pinocchio.Model
    import pinocchio as pin

    return pin.buildModelFromUrdf(urdf())


def within(q: np.ndarray, ik: ArmIk) -> bool:
    return bool(np.all(np.isfinite(q)) and np.all(q >= ik.lower) and np.all(q <= ik.upper))


unit = st.floats(0.0, 1.0)
configurations = st.lists(unit, min_size=7, max_size=7).map(
    lambda u: arm().lower + np.asarray(u) * (arm().upper - arm().lower))


@SETTINGS
@given(configurations)
def test_forward_kinematics_is_pinocchios_on_the_full_model(q):
    import pinocchio as pin

    model = full_model()
    data = model.createData()
    q_full = pin.neutral(model)
    q_full[model.joints[model.getJointId("torso_lift_joint")].idx_q] = TORSO["torso_lift_joint"]
    for name, value in zip(JOINTS, q, strict=True):
        q_full[model.joints[model.getJointId(name)].idx_q] = value
    pin.framesForwardKinematics(model, data, q_full)
    expected = data.oMf[model.getFrameId(BASE)].actInv(data.oMf[model.getFrameId(TIP)])
    position, rotation = arm().forward(q)
    np.testing.assert_allclose(position, expected.translation, atol=1e-12)
    np.testing.assert_allclose(rotation, expected.rotation, atol=1e-12)


@SETTINGS
@given(configurations, st.lists(st.floats(-0.05, 0.05), min_size=7, max_size=7))
def test_a_nearby_pose_is_reached_within_the_tolerances(q, offset):
    """IK round trip: the pose of q, from a start up to 0.05 rad away per joint (a tick's warm start)."""
    ik = arm()
    position, rotation = ik.forward(q)
    start = np.clip(q + np.asarray(offset), ik.lower, ik.upper)
    result = ik.solve(start, position, rotation)
    assert within(result.q, ik)
    assert result.iterations <= ik.config.max_iterations
    if result.status is IkStatus.REACHED:
        reached_p, _ = ik.forward(result.q)
        assert np.linalg.norm(reached_p - position) <= ik.config.position_tolerance_m
    else:  # a start pinned at a joint limit may be unable to get there in the iterations it has
        assert result.status in (IkStatus.APPROACHING, IkStatus.UNREACHABLE)
        assert result.position_error_m <= np.linalg.norm(ik.forward(start)[0] - position) + 1e-12


def test_reachable_targets_are_reached_from_a_warm_start():
    """A smooth joint-space path's poses, followed tick by tick from the last answer: every one reached."""
    ik = arm()
    rng = np.random.default_rng(0)
    reached = 0
    for _ in range(10):
        a = rng.uniform(ik.lower + 0.3, ik.upper - 0.3)
        b = np.clip(a + rng.uniform(-0.5, 0.5, 7), ik.lower + 0.1, ik.upper - 0.1)
        q = a.copy()
        for s in np.linspace(0.0, 1.0, 30):
            result = ik.solve(q, *ik.forward(a + s * (b - a)))
            assert within(result.q, ik)
            reached += result.status is IkStatus.REACHED
            q = result.q
    assert reached >= 0.95 * 300


finite_or_not = st.one_of(st.floats(-10.0, 10.0), st.sampled_from([np.nan, np.inf, -np.inf, 1e9]))


@SETTINGS
@given(configurations, st.lists(finite_or_not, min_size=3, max_size=3),
       st.lists(finite_or_not, min_size=9, max_size=9))
def test_any_target_gives_a_finite_command_within_the_joint_limits(q, position, rotation):
    ik = arm()
    result = ik.solve(q, np.asarray(position), np.asarray(rotation).reshape(3, 3))
    assert within(result.q, ik)
    if not (np.all(np.isfinite(position)) and np.all(np.isfinite(rotation))):
        assert result.status is IkStatus.INVALID_TARGET
        np.testing.assert_array_equal(result.q, q)  # it holds


def test_an_unreachable_target_goes_as_close_as_the_limits_allow_and_says_so():
    ik = arm()
    q = np.clip(np.array([0.2, 0.3, 0.0, 1.2, 0.0, 0.3, 0.0]), ik.lower, ik.upper)
    start_distance = np.linalg.norm(ik.forward(q)[0] - [3.0, 0.0, 1.0])
    for _ in range(30):  # 30 ticks toward a point 3 m away
        result = ik.solve(q, np.array([3.0, 0.0, 1.0]), np.eye(3))
        assert within(result.q, ik) and result.status is not IkStatus.REACHED
        q = result.q
    assert result.status is IkStatus.UNREACHABLE  # stalled at the arm's reach, and said so
    assert result.position_error_m < start_distance - 0.3  # after going toward it


@given(st.floats(0.0, 100.0), st.floats(0.0, 100.0), st.booleans())
def test_singularity_scale_falls_from_one_to_zero(a, b, toward):
    config = IkConfig()
    low, high = sorted((a, b))
    scale_low, _ = singularity_scale(low, toward, config)
    scale_high, status = singularity_scale(high, toward, config)
    assert 0.0 <= scale_high <= scale_low <= 1.0
    if high <= config.singularity_decelerate_condition:
        assert scale_high == 1.0 and status is SingularityStatus.CLEAR
    if high >= config.singularity_stop_condition:
        assert scale_high == 0.0 and status is SingularityStatus.HALT
    assert singularity_scale(high, False, config)[0] >= singularity_scale(high, True, config)[0]


def test_approaching_the_straight_arm_the_speed_scale_reaches_zero_at_the_stop_threshold():
    """The elbow (joint 4) straightening: the arm's workspace-boundary singularity."""
    ik = arm()
    bent = np.array([0.2, -0.5, 1.5, 1.8, -1.0, 0.8, 0.0])  # condition number 9
    scales, conditions = [], []
    for elbow in np.linspace(1.8, 0.0, 60):
        q = bent.copy()
        q[3] = elbow
        p_now, _ = ik.forward(q)
        q_next = q.copy()
        q_next[3] = max(elbow - 0.01, 0.0)
        twist = np.concatenate([(ik.forward(q_next)[0] - p_now) / 0.01, np.zeros(3)])  # straightening further
        scale, status, condition = ik.singularity(q, twist)
        scales.append(scale)
        conditions.append(condition)
        if condition >= ik.config.singularity_stop_condition:
            assert scale == 0.0 and status is SingularityStatus.HALT
    assert scales[0] == 1.0 and scales[-1] == 0.0
    assert max(conditions) > ik.config.singularity_stop_condition
