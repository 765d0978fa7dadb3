"""The simulated controllers follow trajectory messages the way a stock JointTrajectoryController does."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wall_oss_ros.core.trajectory_following import JtcSettings, TrajectoryFollower, TrajectoryRejectedError

JOINTS = ("a", "b", "c")
MOVING_END = JtcSettings(allow_nonzero_velocity_at_trajectory_end=True)  # accepts any generated velocities


@st.composite
def trajectories(draw):
    n = draw(st.integers(1, 8))
    gaps = draw(st.lists(st.floats(0.005, 0.5), min_size=n, max_size=n))
    times = np.cumsum(gaps)
    positions = draw(st.lists(st.lists(st.floats(-3, 3), min_size=3, max_size=3), min_size=n, max_size=n))
    with_velocities = draw(st.booleans())
    velocities = (draw(st.lists(st.lists(st.floats(-2, 2), min_size=3, max_size=3), min_size=n, max_size=n))
                  if with_velocities else None)
    return times.tolist(), positions, velocities


@settings(max_examples=60, deadline=None)
@given(trajectory=trajectories(), now=st.floats(0, 100), order=st.permutations(JOINTS))
def test_passes_through_every_point_and_holds_the_last(trajectory, now, order):
    times, positions, velocities = trajectory
    follower = TrajectoryFollower(JOINTS, np.zeros(3), MOVING_END)
    perm = [JOINTS.index(j) for j in order]
    follower.accept(order, 0.0, times, [np.array(p)[perm].tolist() for p in positions],
                    None if velocities is None else [np.array(v)[perm].tolist() for v in velocities], now)
    for t, p in zip(times, positions, strict=True):
        np.testing.assert_allclose(follower.sample(now + t)[0], p, atol=1e-9)  # in our joint order
    np.testing.assert_allclose(follower.sample(now + times[-1] + 5.0)[0], positions[-1], atol=1e-12)
    assert np.all(follower.sample(now + times[-1] + 5.0)[1] == 0.0)


@settings(max_examples=40, deadline=None)
@given(first=trajectories(), second=trajectories(), gap=st.floats(0.0, 0.4))
def test_a_new_trajectory_starts_where_the_running_one_is(first, second, gap):
    """Without a measured state (or with interpolate_from_desired_state) from the desired one: no jump."""
    follower = TrajectoryFollower(JOINTS, np.zeros(3), MOVING_END)
    follower.accept(JOINTS, 0.0, *first, now_s=1.0)
    before, _ = follower.sample(1.0 + gap)
    follower.accept(JOINTS, 0.0, *second, now_s=1.0 + gap)
    np.testing.assert_allclose(follower.sample(1.0 + gap)[0], before, atol=1e-9)  # no jump at the splice


def test_a_stamped_trajectory_replaces_the_running_one_at_once():
    """Jazzy/Kilted forget the old trajectory (splicing exists only on master): from the state at receipt
    the motion heads for the new first point, due at stamp + time_from_start."""
    follower = TrajectoryFollower(JOINTS, np.zeros(3))
    follower.accept(JOINTS, 0.0, [1.0], [[1.0, 1.0, 1.0]], None, now_s=0.0)
    follower.accept(JOINTS, 0.5, [0.5], [[-1.0, -1.0, -1.0]], None, now_s=0.2)
    np.testing.assert_allclose(follower.sample(0.4)[0], [0.2 + 0.25 * -1.2] * 3)  # 0.2 at receipt → -1 at 1.0
    np.testing.assert_allclose(follower.sample(1.0)[0], [-1.0] * 3)


# Messages and the stock controller's verdict with its default configuration (ros2_controllers jazzy/kilted
# joint_trajectory_controller.cpp validate_trajectory_msg): None = accepted, else words of its reason.
STOCK_VERDICTS = [
    ("moving one-point stream command", JOINTS, 0.0, [0.01], [[0.1, 0.1, 0.1]], [[1.0, 0.0, 0.0]],
     "Velocity of last trajectory point of joint a is not zero"),
    ("horizon ending at rest", JOINTS, 0.0, [0.01, 0.02], [[0.1] * 3, [0.2] * 3], [[1.0] * 3, [0.0] * 3], None),
    ("positions only", JOINTS, 0.0, [0.5], [[0.1] * 3], None, None),
    ("time_from_start not increasing", JOINTS, 0.0, [0.02, 0.02], [[0.1] * 3, [0.2] * 3], None,
     "not strictly increasing"),
    ("partial joints", ("a", "b"), 0.0, [0.5], [[0.1, 0.1]], None, "do not match the controller's joints"),
    ("stamped, ended in the past", JOINTS, 5.0, [0.5], [[0.1] * 3], None, "ends in the past"),
    ("stamped, still running", JOINTS, 5.0, [2.0], [[0.1] * 3], None, None),
    ("no points", JOINTS, 0.0, [], [], None, "Empty trajectory"),
    ("no joints", (), 0.0, [0.5], [[]], None, "Empty joint names"),
]


@pytest.mark.parametrize(("case", "names", "stamp", "times", "positions", "velocities", "reason"), STOCK_VERDICTS,
                         ids=[c[0] for c in STOCK_VERDICTS])
def test_messages_get_the_stock_controllers_verdict(case, names, stamp, times, positions, velocities, reason):
    follower = TrajectoryFollower(JOINTS, np.zeros(3))
    follower.accept(JOINTS, 0.0, [1.0], [[1.0, 1.0, 1.0]], None, now_s=6.0)
    before = follower.sample(6.5)[0]
    if reason is None:
        follower.accept(names, stamp, times, positions, velocities, now_s=6.0)
        return
    with pytest.raises(TrajectoryRejectedError, match=reason):
        follower.accept(names, stamp, times, positions, velocities, now_s=6.0)
    np.testing.assert_allclose(follower.sample(6.5)[0], before)  # the running trajectory is kept


def test_a_moving_last_point_is_accepted_when_the_controller_allows_it():
    follower = TrajectoryFollower(JOINTS, np.zeros(3), MOVING_END)
    follower.accept(JOINTS, 0.0, [0.01], [[0.1, 0.1, 0.1]], [[1.0, 0.0, 0.0]], now_s=0.0)
    np.testing.assert_allclose(follower.sample(0.01)[0], [0.1] * 3)


def test_a_new_trajectory_starts_from_the_measured_state_unless_told_otherwise():
    measured = (np.array([0.5, 0.5, 0.5]), np.zeros(3))
    stock = TrajectoryFollower(JOINTS, np.zeros(3))
    stock.accept(JOINTS, 0.0, [1.0], [[1.0] * 3], None, now_s=0.0, measured=measured)
    np.testing.assert_allclose(stock.sample(0.0)[0], [0.5] * 3)
    desired = TrajectoryFollower(JOINTS, np.zeros(3), JtcSettings(interpolate_from_desired_state=True))
    desired.accept(JOINTS, 0.0, [1.0], [[1.0] * 3], None, now_s=0.0, measured=measured)
    np.testing.assert_allclose(desired.sample(0.0)[0], [0.0] * 3)


def test_a_first_point_already_due_makes_the_controller_jump_into_the_segment():
    """A stamp in the past (a late message stamped at its tick) puts now inside a later segment: a step."""
    follower = TrajectoryFollower(JOINTS, np.zeros(3))
    follower.accept(JOINTS, 1.0, [0.01, 0.02, 0.03], [[0.1] * 3, [0.2] * 3, [0.3] * 3], None, now_s=1.015)
    np.testing.assert_allclose(follower.sample(1.015)[0], [0.15] * 3)  # not 0.0, where the robot was


def test_linear_between_points_without_velocities():
    follower = TrajectoryFollower(JOINTS, np.zeros(3))
    follower.accept(JOINTS, 0.0, [1.0, 2.0], [[1, 2, 3], [3, 2, 1]], None, now_s=10.0)
    p, v = follower.sample(11.5)
    np.testing.assert_allclose(p, [2, 2, 2])
    np.testing.assert_allclose(v, [2, 0, -2])


@pytest.mark.parametrize("names, times, positions, velocities", [
    (("a", "b"), [0.1], [[0, 0]], None),  # not this controller's joints
    (("a", "b", "x"), [0.1], [[0, 0, 0]], None),
    (JOINTS, [0.1, 0.1], [[0, 0, 0], [1, 1, 1]], None),  # times not increasing
    (JOINTS, [-0.1], [[0, 0, 0]], None),
    (JOINTS, [0.1], [[0, float("nan"), 0]], None),
    (JOINTS, [0.1], [[0, 0]], None),  # wrong width
    (JOINTS, [0.1], [[0, 0, 0]], [[0, float("inf"), 0]]),
    (JOINTS, [], [], None),
])
def test_malformed_trajectories_are_refused_and_the_running_one_kept(names, times, positions, velocities):
    follower = TrajectoryFollower(JOINTS, np.zeros(3))
    follower.accept(JOINTS, 0.0, [1.0], [[1.0, 1.0, 1.0]], None, now_s=0.0)
    with pytest.raises(ValueError):
        follower.accept(names, 0.0, times, positions, velocities, now_s=0.5)
    np.testing.assert_allclose(follower.sample(1.0)[0], [1.0] * 3)


def test_forward_commands_hold_and_refuse_bad_input():
    follower = TrajectoryFollower(JOINTS, np.zeros(3))
    follower.hold([0.1, 0.2, 0.3])
    np.testing.assert_allclose(follower.sample(5.0)[0], [0.1, 0.2, 0.3])
    for bad in ([1.0, 2.0], [0.0, float("nan"), 0.0]):
        with pytest.raises(ValueError):
            follower.hold(bad)
    np.testing.assert_allclose(follower.sample(5.0)[0], [0.1, 0.2, 0.3])
