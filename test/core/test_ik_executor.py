"""End-effector actions on joint-space controllers (TIAGo++): Cartesian limits → IK → joint limits, with
MoveIt Servo's singularity and self-collision rules. Judged on the joint commands themselves: their tip
path (pinocchio's forward kinematics), their self-collision distance, their joint limits."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test.support.executor_run import Recording, check_limits, measured_from_commands
from test.support.robots import contract, rest_action, rest_state
from wall_oss_ros.core.chunk import Chunk
from wall_oss_ros.core.executor import Executor
from wall_oss_ros.core.rotations import matrix_to_rot6d
from wall_oss_ros.core.safety.status import Intervention

EXAMPLES = int(os.environ.get("WALL_OSS_ROS_PROPERTY_EXAMPLES", "25"))
IDENTITY_6D = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]  # no rotation, as a relative 6-D delta
TOL = 1e-6
# The tip path of the joint commands against the Cartesian speed limit (per axis), reachable or not: the
# joint steps are refused past 2 % over it along their own stops, and the tip's finite differences on the
# tick grid are judged here.
CARTESIAN_SLACK = 1.05
# Far targets (left offset, right offset) [m] that once drove the tip past the limit: the arms braking joint
# by joint near a singularity, joint servos catching up, an acceleration taken back that raised the speed.
FAR_TARGETS = [([0, 0, 1], [0, 0, 0]), ([0, 0, 0], [-0.0625, 1, 1]), ([0.5, 0.3, 0.3], [0, 0, 0]),
               ([1, 0, 0], [0, -1, 0]), ([0, 1, 0], [0, 0, -1]), ([1.167, 0.421, 1.445], [0.929, 0.407, -0.85])]


class Run:
    """A TIAGo++ executor and a robot that tracks its joint commands perfectly."""

    def __init__(self) -> None:
        self.c = contract("tiago_dual")
        self.ex = Executor(self.c)
        self.base, self.rest = rest_state(self.c), rest_action(self.c)
        self.now, self.chunk_id, self.rec = 0.0, 0, Recording()
        self.ex.tick(self.now, self.base)
        self.ex.start(self.now)
        self.arms = [ga for ga in self.ex.groups if ga.ik is not None]
        self.tips: list[np.ndarray] = []  # per tick: (arms, 3) tip positions of the joint commands
        self.clearances: list[float] = []

    def deltas(self, offsets: dict[str, np.ndarray], horizon: int = 30) -> np.ndarray:
        """A relative chunk: per arm an xyz offset (horizon, 3) from the observed pose, no rotation."""
        values = np.zeros((horizon, self.c.action_dim))
        for ga in self.arms:
            values[:, ga.cols.start + 3:ga.cols.start + 9] = IDENTITY_6D
            if ga.group.name in offsets:
                values[:, ga.cols.start:ga.cols.start + 3] = offsets[ga.group.name]
        for g in self.c.groups:  # the other groups hold (absolute)
            if g.ik is None:
                sl = self.c.action_slice(g)
                values[:, sl] = self.rest[sl]
        return values

    def chunk(self, values: np.ndarray) -> None:
        self.chunk_id += 1
        state = self.state()
        self.ex.on_chunk(Chunk(self.chunk_id, self.now, self.c.dt_s, self.c.action_names, values,
                               state_names=self.c.action_names, state=state), self.now)

    def state(self) -> np.ndarray:
        """The observed state in action layout: tip poses of the measured joints, other axes as held."""
        state = self.rest.copy()
        q = self.ex.command_positions
        for ga, arm in zip(self.arms, self.ex._ik.arms, strict=True):
            xyz, rotation = arm.ik.forward(q[ga.axes])
            state[ga.cols] = np.concatenate([xyz, matrix_to_rot6d(rotation)])
        return state

    def ticks(self, n: int) -> None:
        for _ in range(n):
            self.now += self.ex.period_s
            out = self.ex.tick(self.now, measured_from_commands(self.ex, self.now, self.base))
            self.rec.add(out)
            q = self.ex.command_positions
            self.tips.append(np.array([arm.ik.forward(q[ga.axes])[0]
                                       for ga, arm in zip(self.arms, self.ex._ik.arms, strict=True)]))
            self.clearances.append(self.ex._guard.clearance(q).distance_m)

    def tip_velocities(self) -> np.ndarray:
        """(ticks - 1, arms, 3) velocity of the joint commands' tips [m/s]."""
        return np.diff(np.array(self.tips), axis=0) / self.ex.period_s

    def tip_speeds(self) -> np.ndarray:
        return np.linalg.norm(self.tip_velocities(), axis=2)

    def check(self, slack: float = CARTESIAN_SLACK) -> None:
        """Finite, within the joint limits (position to jerk), never closer than the stop distance, and the
        tip path within the Cartesian speed limit (times slack)."""
        check_limits(self.ex, self.rec)
        vmax = self.c.group("left_arm").limits[0].velocity_max  # per axis, as the Cartesian limiter has it
        fastest = np.abs(self.tip_velocities()).max(initial=0.0)
        assert fastest <= vmax * slack + TOL, f"tip velocity {fastest:.3f} m/s over {vmax} x {slack} on one axis"
        stop = self.c.self_collision.stop_distance_m
        assert min(self.clearances) >= stop - TOL, f"self-collision distance {min(self.clearances):.4f} m"


def test_a_reachable_path_is_followed_and_reached():
    run = Run()
    home = run.state()[run.arms[0].cols][:3]
    t = np.arange(30)[:, None] * run.c.dt_s
    for k in range(6):  # a circle of 5 cm radius in the y-z plane over 2 s, a chunk every 0.3 s
        phase = 2 * np.pi * (t + 0.3 * k) / 2.0
        path = home + 0.05 * np.hstack([np.zeros_like(phase), np.sin(phase), np.cos(phase) - 1])
        run.chunk(run.deltas({"left_arm": path - run.state()[run.arms[0].cols][:3]}))
        run.ticks(30)
    target = home + np.array([0.05, 0.02, -0.03])
    start = run.state()[run.arms[0].cols][:3]
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.minimum(np.arange(30) / 20, 1.0))[:, None]  # there in 0.67 s
    run.chunk(run.deltas({"left_arm": ramp * (target - start)}))
    run.ticks(150)
    run.check()
    assert np.linalg.norm(run.tips[-1][0] - target) < 1e-3  # held target reached (joint command's tip)
    assert run.ex.counters[Intervention.IK_UNREACHABLE] == 0


offsets = st.one_of(st.floats(-2.0, 2.0), st.sampled_from([np.nan, np.inf, -np.inf, 50.0, -50.0]))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.lists(offsets, min_size=6, max_size=6), st.integers(1, 40)), min_size=1, max_size=4))
def test_any_target_keeps_joint_limits_and_self_collision_distance(steps):
    """Reachable or not, NaN, far away, the two arms sent toward each other: never a non-finite command, one
    outside the joint limits, a tip faster than the Cartesian limit (see the slack), or the arms closer than
    the stop distance."""
    run = Run()
    for values, ticks in steps:
        left, right = np.array(values[:3]), np.array(values[3:])
        run.chunk(run.deltas({"left_arm": np.tile(left, (30, 1)), "right_arm": np.tile(right, (30, 1))}))
        run.ticks(ticks)
    run.ticks(20)
    run.check()


@pytest.mark.parametrize(("left", "right"), FAR_TARGETS)
def test_far_targets_keep_the_cartesian_speed_limit(left, right):
    run = Run()
    for _ in range(4):
        run.chunk(run.deltas({"left_arm": np.tile(left, (30, 1)), "right_arm": np.tile(right, (30, 1))}))
        run.ticks(40)
    run.ticks(20)
    run.check()
    assert run.ex.counters[Intervention.IK_UNREACHABLE] + run.ex.counters[Intervention.WORKSPACE_LIMIT] > 0


def test_arms_sent_through_each_other_stop_at_the_stop_distance_and_may_move_apart():
    run = Run()
    run.chunk(run.deltas({"left_arm": np.tile([0.15, -0.6, 0.0], (30, 1)),
                          "right_arm": np.tile([0.15, 0.6, 0.0], (30, 1))}))
    run.ticks(250)
    closest = min(run.clearances)
    stop = run.c.self_collision.stop_distance_m
    assert stop - TOL <= closest < run.c.self_collision.proximity_threshold_m
    assert run.ex.counters[Intervention.COLLISION_DECELERATE] > 0
    assert run.tip_speeds()[-20:].max() < 1e-3  # halted there, target still beyond
    run.chunk(run.deltas({"left_arm": np.tile([0.0, 0.3, 0.0], (30, 1)),
                          "right_arm": np.tile([0.0, -0.3, 0.0], (30, 1))}))
    run.ticks(150)
    assert run.clearances[-1] > run.c.self_collision.proximity_threshold_m  # away again
    run.check()


def test_near_a_singularity_the_tip_slows_and_stops_before_the_stop_threshold():
    """The left arm sent straight out, past its reach: the elbow straightens toward the singularity. The
    Jacobian's condition number of the joint command never passes the stop threshold, the arm slows in the
    decelerate band, and it comes to rest there."""
    run = Run()
    arm = run.ex._ik.arms[0]
    spec = run.c.group("left_arm").ik
    conditions = []
    far = run.state()[arm.cols][:3] + np.array([0.5, 0.3, 0.3])  # 66 cm out: beyond the arm's reach
    for _ in range(8):
        run.chunk(run.deltas({"left_arm": np.tile(far - run.state()[arm.cols][:3], (30, 1))}))
        for _ in range(30):
            run.ticks(1)
            conditions.append(arm.ik.condition(run.ex.command_positions[arm.axes]))
    run.check()
    conditions = np.array(conditions)
    assert conditions.max() > spec.singularity_decelerate_condition  # it did approach one
    assert conditions.max() < spec.singularity_stop_condition
    assert run.ex.counters[Intervention.SINGULARITY_DECELERATE] > 0
    assert run.tip_speeds()[-20:, 0].max() < 1e-3  # at rest, its target still beyond
