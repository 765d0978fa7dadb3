"""The simulated controllers follow trajectory messages the way a JointTrajectoryController does."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wall_oss_ros.core.trajectory_following import TrajectoryFollower

JOINTS = ("a", "b", "c")


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
    follower = TrajectoryFollower(JOINTS, np.zeros(3))
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
    follower = TrajectoryFollower(JOINTS, np.zeros(3))
    follower.accept(JOINTS, 0.0, *first, now_s=1.0)
    before, _ = follower.sample(1.0 + gap)
    follower.accept(JOINTS, 0.0, *second, now_s=1.0 + gap)
    np.testing.assert_allclose(follower.sample(1.0 + gap)[0], before, atol=1e-9)  # no jump at the splice


def test_a_stamped_trajectory_waits_for_its_start_time():
    follower = TrajectoryFollower(JOINTS, np.zeros(3))
    follower.accept(JOINTS, 0.0, [1.0], [[1.0, 1.0, 1.0]], None, now_s=0.0)
    follower.accept(JOINTS, 0.5, [0.5], [[-1.0, -1.0, -1.0]], None, now_s=0.2)
    np.testing.assert_allclose(follower.sample(0.4)[0], [0.4] * 3)  # the old one still runs
    np.testing.assert_allclose(follower.sample(0.5)[0], [0.5] * 3)  # the new one starts from there
    np.testing.assert_allclose(follower.sample(1.0)[0], [-1.0] * 3)


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
