"""Jerk-limited motion of every control axis with Ruckig, never leaving position bounds.

Ruckig (community edition) ignores position limits: a target near a bound reached at speed overshoots
it. So each tick the tracking step is accepted for an axis only if a time-optimal stop from the new
state stays inside the axis bounds; otherwise that axis follows the time-optimal stop from its current
state, which by the same rule stays inside. Axes are independent (no synchronisation), so the choice
is made per axis.
"""

from __future__ import annotations

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


class MotionLimiter:
    """State (position, velocity, acceleration) of every control axis, advanced one control period per step."""

    def __init__(self, limits: Sequence[AxisLimits], velocity_axes: Sequence[bool], period_s: float) -> None:
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
        self._zeros = [0.0] * n
        self._period_slack = self.period_s * (1 + 1e-9)
        self.p, self.v, self.a = np.zeros(n), np.zeros(n), np.zeros(n)

        self._otg = Ruckig(n)
        self._track = self._input(n)
        self._track.per_dof_control_interface = [
            ControlInterface.Velocity if vel else ControlInterface.Position for vel in self.velocity_axes]
        self._track.minimum_duration = self.period_s
        # An axis that can reach its target within the period is time-synchronised to arrive exactly at the
        # period (alone it would arrive early and coast past the target). An axis that cannot (catching up
        # after a jump) moves on its own, so it never stretches the others. Velocity axes are independent.
        self._on_track = ~self.velocity_axes
        # Per axis, how much later than one period it will reach its target (0 when on track): an axis
        # catching up should aim at where the plan will be when it arrives, or it chases forever.
        self.lead_s = np.zeros(n)
        self._stop = self._input(n)
        self._stop.control_interface = ControlInterface.Velocity
        self._stop.target_velocity = [0.0] * n
        self._traj, self._stop_traj = Trajectory(n), Trajectory(n)
        self._sync_modes = (Synchronization.No, Synchronization.Time)

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

    def _track_step(self, t: InputParameter) -> bool:
        """Tracking trajectory with the axes that can make the period synchronised to it."""
        for _ in range(2):
            t.per_dof_synchronization = [self._sync_modes[s] for s in self._on_track.tolist()]
            if not self._calculate(t, self._traj):
                if not self._on_track.any():
                    return False
                self._on_track = np.zeros(self.n, dtype=bool)  # retry with every axis on its own
                continue
            durations = np.array(self._traj.independent_min_durations)
            on_track = (durations <= self._period_slack) & ~self.velocity_axes
            self.lead_s = np.where(on_track | self.velocity_axes, 0.0, durations - self.period_s)
            stretched = bool((self._on_track & ~on_track).any())
            self._on_track = on_track
            if not stretched:
                return True
        return True

    def _stop_from(self, p: np.ndarray, v: np.ndarray, a: np.ndarray) -> bool:
        s = self._stop
        s.current_position, s.current_velocity, s.current_acceleration = p.tolist(), v.tolist(), a.tolist()
        return self._calculate(s, self._stop_traj)

    def stop_extrema(self) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest position each axis reaches if it stops as fast as the limits allow from now."""
        if not self._stop_from(self.p, self.v, self.a):
            return np.full(self.n, -np.inf), np.full(self.n, np.inf)
        ext = self._stop_traj.position_extrema
        return np.array([e.min for e in ext]), np.array([e.max for e in ext])

    def _near_bounds(self, p: np.ndarray, v: np.ndarray, a: np.ndarray) -> bool:
        """Whether any bounded axis may be unable to stop before a bound (cheap, conservative screen).

        A stop never moves faster than s = |v| + a²/(2j) and lasts at most stop_time_bound() =
        s/A + (|a| + 2A)/j, so it covers at most their product. Only axes closer to a bound than that
        need Ruckig's exact answer.
        """
        if not self._any_bounded:
            return False
        abs_a = np.abs(a)
        speed = np.abs(v) + abs_a * abs_a * self._half_inv_jerk
        reach = (speed * self._inv_acc + abs_a * self._inv_jerk + self._two_a_over_j) * speed
        return bool(((p + reach > self.upper) | (p - reach < self.lower)).any())

    def step(self, target_position: np.ndarray, target_velocity: np.ndarray, brake: np.ndarray,
             target_acceleration: np.ndarray | None = None) -> StepReport:
        """Advance one period toward the targets; axes in `brake` (and unsafe ones) stop as fast as allowed."""
        p, v, a = self.p, self.v, self.a
        t = self._track
        t.current_position, t.current_velocity, t.current_acceleration = p.tolist(), v.tolist(), a.tolist()
        t.target_position = target_position.tolist()
        tv = np.minimum(np.maximum(target_velocity, -self.velocity_max), self.velocity_max)
        t.target_velocity = tv.tolist()
        if target_acceleration is None:
            t.target_acceleration = self._zeros
        else:
            # Ruckig refuses a target state that can only be reached from beyond the velocity limit:
            # keep the acceleration only where v - a·|a|/(2j) (the velocity leading into it) is within.
            ta = np.minimum(np.maximum(target_acceleration, -self._acc_target_max), self._acc_target_max)
            ok = np.abs(tv - ta * np.abs(ta) * self._half_inv_jerk) <= self._vel_target_max
            t.target_acceleration = np.where(ok, ta, 0.0).tolist()
        fallback = not self._track_step(t)
        brake = np.array(brake, dtype=bool, copy=True)
        unsafe = np.zeros(self.n, dtype=bool)
        if fallback:
            brake[:] = True
        else:
            cp, cv, ca = map(np.array, self._traj.at_time(self.period_s))
            if self._near_bounds(cp, cv, ca) and self._stop_from(cp, cv, ca):
                ext_min, ext_max = np.array([(e.min, e.max) for e in self._stop_traj.position_extrema]).T
                unsafe = self.bounded & ((ext_max > np.maximum(self.upper, p) + BOUND_EPS) |
                                         (ext_min < np.minimum(self.lower, p) - BOUND_EPS))
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

    def stopped(self, mask: np.ndarray | None = None, tol: float = 1e-9) -> bool:
        sel = slice(None) if mask is None else mask
        return bool(np.all(np.abs(self.v[sel]) <= tol) and np.all(np.abs(self.a[sel]) <= tol))
