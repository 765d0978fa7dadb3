"""Path-preserving retiming: where the plan asks for more than the limits allow, its time is slowed, not chased.

A time-indexed target that needs more acceleration than an axis has (a 1.5 Hz sine at 119 % of a_max)
drives a jerk-limited follower into swings at its limits around the target: inside every limit, and
0.25 rad from where it was told to go. Slowing the plan's clock there instead keeps the command on the
model's path; it falls behind the chunk's schedule, and the next chunk, computed from an observation of
where the robot then is, starts from there (core/plan_clock.py maps its stamp to plan time).

Each merged chunk whose own steps ask for more than the limits at the speed scale gets one rate: the fastest
constant σ at which they keep VELOCITY_SHARE of every velocity limit and ACCELERATION_SHARE of every
acceleration limit (the minimum of the maximum-velocity curve over the chunk). σ moves from the rate it has to
that one along a ramp whose σ̇·dx/dτ, the acceleration a change of rate adds, stays within the acceleration
the share leaves free. Written here, not taken from a time-optimal parameteriser (TOPP-RA): a time-optimal
profile switches the path's acceleration at once, fast between the demanding points and slow at them; a jerk-
limited follower cannot track those switches, and on the 119 % sine it swung around the retimed target 0.22
rad (std) as it did around the original, where a rate held over each chunk keeps it within 0.03
(test_executor_time_scaling.py).

The path is the plan's spline in action space, one coordinate per position-like column with its velocity
and acceleration limits (joint and gripper positions; an end-effector's x, y, z with its Cartesian limits).
Orientation columns (rot6d) and base twists are left out: their limits are not box limits on the path's
coordinates, and the limiters after the plan keep them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VELOCITY_SHARE = 0.95  # of each axis's velocity limit, for the retimed path
ACCELERATION_SHARE = 0.7  # of each axis's acceleration limit (the jerk-limited follower's catch-up needs the rest)
SMOOTHING_S = 0.1  # [plan s] span of the central differences the path's derivatives are taken over
GRID_S = 0.01  # [plan s] spacing of the points the path's derivatives are evaluated at


@dataclass(frozen=True)
class Profile:
    """The fastest plan-time rate σ [plan s per s] at each plan time of a grid (past its end: any)."""

    times: np.ndarray  # plan time of each gridpoint [s]
    rates: np.ndarray  # σ there

    def cap(self, tau: float) -> float:
        if tau >= self.times[-1]:
            return float("inf")  # past the plan's end: nothing to slow
        return float(np.interp(tau, self.times, self.rates))


def smoothed(spline, ss: np.ndarray, order: int) -> np.ndarray:  # noqa: ANN001 - CubicSpline
    """The spline (order 0) or its first or second derivative as central differences over SMOOTHING_S: policy
    jitter through a spline's knots is curvature of noise / dt², which no robot need follow (the feed-forward
    averages it too), while a motion's own derivatives change little over a tenth of a second."""
    lo, hi = spline.x[0], spline.x[-1]

    def at(offset: float) -> np.ndarray:
        return spline(np.clip(ss + offset, lo, hi))

    h = SMOOTHING_S
    if order == 0:
        return at(0.0)
    if order == 1:
        return (at(0.5 * h) - at(-0.5 * h)) / h
    return (at(h) - 2.0 * at(0.0) + at(-h)) / (h * h)


def _grid(start: float, end: float) -> np.ndarray:
    return np.linspace(start, end, max(2, int(np.ceil((end - start) / GRID_S)) + 1))


class Retimer:
    """Rates for the plan's position-like action columns, from their velocity and acceleration limits."""

    def __init__(self, columns: np.ndarray, velocity_max: np.ndarray, acceleration_max: np.ndarray) -> None:
        self.columns = np.asarray(columns, dtype=int)
        self.velocity_max = np.asarray(velocity_max, dtype=float)
        self.acceleration_max = np.asarray(acceleration_max, dtype=float)
        self.computed = 0  # profiles computed (for benchmarks and tests)

    def fastest_rate(self, spline, start: float, end: float, scale: float) -> float:  # noqa: ANN001 - CubicSpline
        """The rate for the path over [start, end]: the speed scale where the path keeps within the limits at
        it (the follower's margin suffices there: test_executor_jitter.py), else the fastest constant σ at
        which it keeps the shares of the limits. The last SMOOTHING_S is left out: there the plan's target
        stops where the chunk ends (the next chunk takes over before), and the stop is the follower's, as
        without retiming."""
        stop = end - SMOOTHING_S if end - start > 2 * SMOOTHING_S else end
        ss = _grid(start, stop)
        d1 = np.abs(smoothed(spline, ss, 1)[:, self.columns]).max(axis=0)
        d2 = np.abs(smoothed(spline, ss, 2)[:, self.columns]).max(axis=0)
        if np.all(d1 * scale <= self.velocity_max) and np.all(d2 * scale * scale <= self.acceleration_max):
            return scale
        with np.errstate(divide="ignore"):
            by_velocity = np.where(d1 > 0.0, VELOCITY_SHARE * self.velocity_max / d1, np.inf)
            by_acceleration = np.where(d2 > 0.0, np.sqrt(ACCELERATION_SHARE * self.acceleration_max / d2), np.inf)
        return float(min(scale, by_velocity.min(), by_acceleration.min()))

    def ramp_rate_per_s(self, spline, start: float, end: float) -> float:  # noqa: ANN001 - CubicSpline
        """The fastest change of σ [1/s] over [start, end]: a change of rate moves the target's velocity by
        σ̇·dx/dτ, and that may take only the acceleration the share leaves free."""
        slope = np.abs(smoothed(spline, _grid(start, end), 1)[:, self.columns]).max(axis=0)
        room = (1.0 - ACCELERATION_SHARE) * self.acceleration_max
        with np.errstate(divide="ignore"):
            return float(np.min(np.where(slope > 0.0, room / slope, np.inf)))

    def profile(self, spline, tau_now: float, start: float, end: float, rate_now: float,  # noqa: ANN001 - CubicSpline
                scale: float) -> Profile | None:
        """The rate from plan time tau_now (where the clock runs at rate_now) to the plan's end, for a chunk
        whose own steps begin at `start` (before them: the splice onto the previous plan, the follower's to
        catch up with, as without retiming). None where the chunk keeps the shares of the limits at the speed
        scale and the clock already runs at it, or there is nothing to retime."""
        if not len(self.columns) or end <= start:
            return None
        rate = self.fastest_rate(spline, start, end, scale)
        rate_now = min(max(rate_now, 0.0), scale)
        if rate >= scale and rate_now >= scale:
            return None
        self.computed += 1
        # dσ/dτ = σ̇/σ ≥ σ̇/scale: the ramp in plan time at ramp/scale keeps σ̇ within the ramp.
        ramp = self.ramp_rate_per_s(spline, tau_now, end) / scale
        reached = tau_now + abs(rate - rate_now) / ramp if np.isfinite(ramp) and ramp > 0.0 else tau_now
        if reached <= tau_now:
            return Profile(np.array([tau_now, end]), np.array([rate, rate]))
        if reached >= end:
            return Profile(np.array([tau_now, end]), np.array([rate_now, rate_now + np.sign(rate - rate_now)
                                                                * ramp * (end - tau_now)]))
        return Profile(np.array([tau_now, reached, end]), np.array([rate_now, rate, rate]))
