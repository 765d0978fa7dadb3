"""Jerk-limited motion of every control axis (Ruckig), following targets without leaving position bounds.

Tracking a moving target is a servo on Ruckig's velocity interface: each tick an axis's velocity goes,
jerk-limited, to the target velocity plus a correction proportional to the position error expected at
the end of the tick (target acceleration as feed-forward). Reaching exact target states instead makes an
axis that is slightly off chase its moving target: a time-optimal profile to an exact state can take
many periods, by which time the target has moved. A (nearly) static target, moving under 1 % of the
axis limits, is reached time-optimally on the position interface instead, which arrives exactly.
The gain is set per axis from its own dynamics, catch_up_gain / (acceleration_max / jerk_max), because
the jerk-limited velocity loop lags by about that time constant and a stiffer gain oscillates. The
factor 0.3 keeps the loop stable when the target itself needs most of the acceleration (a sine at 79 %
of acceleration_max, joined late, is caught; at 0.45 the follower locks into anti-phase swings at its
limits). The feed-forward must be smooth (Plan.sample_feedforward): jerk-limited, time-optimal steps
turn noisy target velocities into relay-like swings.

Bounds: Ruckig (community edition) ignores position limits, and an axis reaching a bound at speed would
overshoot it. So each tick the tracking step is accepted for an axis only if a time-optimal stop from
the new state stays inside the axis bounds; otherwise that axis follows the time-optimal stop from its
current state, which by the same rule stays inside. Axes are independent, so the choice is per axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ruckig import ControlInterface, InputParameter, Result, Ruckig, RuckigError, Synchronization, Trajectory

from wall_oss_ros.core.contract import AxisLimits

_OK = (Result.Working, Result.Finished)
BOUND_EPS = 1e-9  # numerical slack of the stop-extrema check [axis unit]


@dataclass(frozen=True)
class StepReport:
    braked_for_bounds: np.ndarray  # axes that had to brake to stay within their bounds
    fallback: bool  # the tracking step failed and every axis braked


def stop_time_bound(velocity: np.ndarray, acceleration: np.ndarray, acc_max: np.ndarray,
                    jerk_max: np.ndarray) -> np.ndarray:
    """Upper bound [s] on the time a jerk-limited stop from (v, a) takes, per axis (analytic, conservative)."""
    v, a = np.abs(velocity), np.abs(acceleration)
    return (a + acc_max) / jerk_max + (v + a * a / (2 * jerk_max)) / acc_max + acc_max / jerk_max


class StopPath:
    """A stop of every axis from one state (a Ruckig trajectory; none when at rest)."""

    def __init__(self, start: np.ndarray, trajectory: Trajectory | None) -> None:
        self._start, self._trajectory = start, trajectory
        self.duration_s = 0.0 if trajectory is None else float(trajectory.duration)

    def at(self, times: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(K, n) positions, velocities and accelerations at these times [s] from the start (at rest after
        the end)."""
        p = np.tile(self._start, (len(times), 1))
        v, a = np.zeros_like(p), np.zeros_like(p)
        if self._trajectory is not None:
            for k, t in enumerate(times):
                p[k], v[k], a[k] = self._trajectory.at_time(min(t, self.duration_s))
        return p, v, a

    def per_tick(self, period_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(K, n) states every period_s: sample k at (k + 1)·period_s, the last at or after the stop's end
        (none without a trajectory)."""
        count = 0 if self._trajectory is None else max(1, math.ceil(self.duration_s / period_s - 1e-9))
        return self.at([(k + 1) * period_s for k in range(count)])


class MotionLimiter:
    """State (position, velocity, acceleration) of every control axis, advanced one control period per step."""

    def __init__(self, limits: Sequence[AxisLimits], velocity_axes: Sequence[bool], period_s: float,
                 catch_up_gain: float = 0.3, servo_axes: Sequence[bool] | None = None) -> None:
        """servo_axes: axes that always take the velocity servo, never the static position interface (joints
        moved together toward one goal, such as an arm's IK answer, which must not arrive each on its own)."""
        n = len(limits)
        self.n, self.period_s = n, float(period_s)
        self.velocity_max = np.array([lim.velocity_max for lim in limits])
        self.acceleration_max = np.array([lim.acceleration_max for lim in limits])
        self.jerk_max = np.array([lim.jerk_max for lim in limits])
        self.velocity_axes = np.asarray(velocity_axes, dtype=bool)
        lo = np.array([lim.position_min for lim in limits])
        hi = np.array([lim.position_max for lim in limits])
        self.lower = np.where(self.velocity_axes, -np.inf, lo)
        self.upper = np.where(self.velocity_axes, np.inf, hi)
        self.bounded = np.isfinite(self.lower) | np.isfinite(self.upper)
        self._any_bounded = bool(self.bounded.any())
        self._inv_acc, self._inv_jerk = 1 / self.acceleration_max, 1 / self.jerk_max
        self._half_inv_jerk = 0.5 / self.jerk_max
        self._two_a_over_j = 2.0 * self.acceleration_max / self.jerk_max
        self._acc_target_max, self._vel_target_max = 0.999 * self.acceleration_max, 0.999 * self.velocity_max
        self._zero_array = np.zeros(n)
        self._static_v, self._static_a = 0.01 * self.velocity_max, 0.01 * self.acceleration_max
        if servo_axes is not None:
            self._static_v = np.where(servo_axes, -1.0, self._static_v)
        self.p, self.v, self.a = np.zeros(n), np.zeros(n), np.zeros(n)

        self._otg = Ruckig(n)
        self._track = self._input(n)
        self._static_key = b""
        self.position_like = ~self.velocity_axes
        # Servo gain [1/s] per axis (0 for velocity axes, which take their target velocity as it is).
        self.gain_per_s = np.where(self.position_like, catch_up_gain * self.jerk_max / self.acceleration_max, 0.0)
        self._stop = self._input(n)
        self._stop.control_interface = ControlInterface.Velocity
        self._stop.target_velocity = [0.0] * n
        self._traj, self._stop_traj = Trajectory(n), Trajectory(n)

    def _input(self, n: int) -> InputParameter:
        inp = InputParameter(n)
        inp.max_velocity = self.velocity_max.tolist()
        inp.max_acceleration = self.acceleration_max.tolist()
        inp.max_jerk = self.jerk_max.tolist()
        inp.target_acceleration = [0.0] * n
        inp.synchronization = Synchronization.No
        return inp

    def reset(self, positions: np.ndarray, velocities: np.ndarray | None = None) -> None:
        self.p = np.array(positions, dtype=float)
        self.v = np.zeros(self.n) if velocities is None else np.array(velocities, dtype=float)
        self.a = np.zeros(self.n)

    def _calculate(self, inp: InputParameter, trajectory: Trajectory) -> bool:
        """Ruckig's calculation; False (never an exception) when it refuses the input or fails."""
        try:
            return self._otg.calculate(inp, trajectory) in _OK
        except RuckigError:
            return False

    def _stop_from(self, p: np.ndarray, v: np.ndarray, a: np.ndarray) -> bool:
        s = self._stop
        s.current_position, s.current_velocity, s.current_acceleration = p.tolist(), v.tolist(), a.tolist()
        return self._calculate(s, self._stop_traj)

    def _stop_extrema(self, axes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest position of these axes along the stop last computed.

        Ruckig 0.19's position_extrema of a velocity-interface trajectory report values that always include
        0 (min <= 0 <= max; their times are right): taken as they are, an axis whose range excludes 0 (a
        gripper from 0.065 to 0.975) brakes for a bound it never nears. So positions are read at those times.
        """
        traj, at = self._stop_traj, {}
        extrema = traj.position_extrema
        lo, hi = np.empty(len(axes)), np.empty(len(axes))
        for k, i in enumerate(axes.tolist()):
            for t, out in ((extrema[i].t_min, lo), (extrema[i].t_max, hi)):
                if t not in at:
                    at[t] = traj.at_time(t)[0]
                out[k] = at[t][i]
        return lo, hi

    def _near_bounds(self, p: np.ndarray, v: np.ndarray, a: np.ndarray) -> np.ndarray:
        """The bounded axes that may be unable to stop before a bound (cheap, conservative screen).

        A stop never moves faster than s = |v| + a²/(2j) and lasts at most stop_time_bound() =
        s/A + (|a| + 2A)/j, so it covers at most their product. Only axes closer to a bound than that
        need Ruckig's exact answer.
        """
        if not self._any_bounded:
            return np.zeros(0, dtype=int)
        abs_a = np.abs(a)
        speed = np.abs(v) + abs_a * abs_a * self._half_inv_jerk
        reach = (speed * self._inv_acc + abs_a * self._inv_jerk + self._two_a_over_j) * speed
        return np.flatnonzero((p + reach > self.upper) | (p - reach < self.lower))

    def step(self, target_position: np.ndarray, target_velocity: np.ndarray, brake: np.ndarray,
             target_acceleration: np.ndarray | None = None) -> StepReport:
        """Advance one period toward the targets; axes in `brake` (and unsafe ones) stop as fast as allowed."""
        p, v, a = self.p, self.v, self.a
        t = self._track
        t.current_position, t.current_velocity, t.current_acceleration = p.tolist(), v.tolist(), a.tolist()
        t.target_position = target_position.tolist()
        ta = self._zero_array if target_acceleration is None else target_acceleration
        static = self.position_like & (np.abs(target_velocity) <= self._static_v) & (np.abs(ta) <= self._static_a)
        key = static.tobytes()
        if key != self._static_key:  # position interface for static targets, velocity servo for moving ones
            t.per_dof_control_interface = [ControlInterface.Position if s else ControlInterface.Velocity
                                           for s in static.tolist()]
            self._static_key = key
        predicted = p + (v + 0.5 * self.period_s * a) * self.period_s  # end of the tick, uncorrected
        servo = target_velocity + self.gain_per_s * (target_position - predicted)
        tv = np.where(static, 0.0, np.where(self.velocity_axes, target_velocity, servo))
        tv = np.minimum(np.maximum(tv, -self.velocity_max), self.velocity_max)
        t.target_velocity = tv.tolist()
        # The velocity interface does not enforce max_velocity: a target acceleration carries the velocity
        # on past the target (Ruckig keeps it after arriving) and a non-zero acceleration can only be
        # brought to zero by moving on a²/(2j). Keep the target acceleration only where the velocity stays
        # within the limit at the target, after one tick at that acceleration, and while it is brought to
        # zero from either: |v| + a²/(2j) ≤ v_max. Every tick then ends in a state from which no later
        # admissible target needs a velocity over the limit.
        ta = np.where(static, 0.0, np.minimum(np.maximum(ta, -self._acc_target_max), self._acc_target_max))
        settle = ta * ta * self._half_inv_jerk
        ok = (np.abs(tv) + settle <= self._vel_target_max) & \
             (np.abs(tv + ta * self.period_s) + settle <= self._vel_target_max)
        t.target_acceleration = np.where(ok, ta, 0.0).tolist()
        fallback = not self._calculate(t, self._traj)
        brake = np.array(brake, dtype=bool, copy=True)
        unsafe = np.zeros(self.n, dtype=bool)
        if fallback:
            brake[:] = True
        else:
            cp, cv, ca = map(np.array, self._traj.at_time(self.period_s))
            near = self._near_bounds(cp, cv, ca)
            if len(near) and self._stop_from(cp, cv, ca):
                ext_min, ext_max = self._stop_extrema(near)
                unsafe[near] = ((ext_max > np.maximum(self.upper[near], p[near]) + BOUND_EPS) |
                                (ext_min < np.minimum(self.lower[near], p[near]) - BOUND_EPS))
                brake |= unsafe
        if brake.any():
            if self._stop_from(p, v, a):
                bp, bv, ba = (np.array(x) for x in self._stop_traj.at_time(self.period_s))
            else:  # cannot happen for valid limits; hold rather than emit anything unchecked
                bp, bv, ba = p.copy(), np.zeros(self.n), np.zeros(self.n)
            if fallback:
                cp, cv, ca = bp, bv, ba
            else:
                cp, cv, ca = np.where(brake, bp, cp), np.where(brake, bv, cv), np.where(brake, ba, ca)
        self.p, self.v, self.a = cp, cv, ca
        return StepReport(unsafe, fallback)

    def stop_path(self, period_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The fastest stop within the limits from the current state, sampled every period_s: (K, n) p, v, a.

        Sample k is at (k + 1)·period_s; the last one, at or after the stop's end, is at rest (v = a = 0).
        Empty when already at rest. Position bounds are the step's business, not this path's: it starts
        from a state every step left able to stop inside them."""
        if self.stopped():
            return np.zeros((0, self.n)), np.zeros((0, self.n)), np.zeros((0, self.n))
        p, v, a = self.braking().per_tick(period_s)
        if not len(p):  # cannot happen for valid limits: hold where it is
            return self.p[None].copy(), np.zeros((1, self.n)), np.zeros((1, self.n))
        v[-1], a[-1] = 0.0, 0.0
        return p, v, a

    def braking(self) -> StopPath:
        """Every axis braking from the current state as fast as allowed. Valid until the limiter's next
        calculation."""
        if self.stopped() or not self._stop_from(self.p, self.v, self.a):  # the latter: invalid limits only
            return StopPath(self.p.copy(), None)
        return StopPath(self.p.copy(), self._stop_traj)

    def stopped(self, mask: np.ndarray | None = None, tol: float = 1e-9) -> bool:
        sel = slice(None) if mask is None else mask
        return bool(np.all(np.abs(self.v[sel]) <= tol) and np.all(np.abs(self.a[sel]) <= tol))
