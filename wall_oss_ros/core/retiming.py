"""Path-preserving retiming: where the plan asks for more than the limits allow, its time is slowed, not chased.

A time-indexed target that needs more acceleration than an axis has (a 1.5 Hz sine at 119 % of a_max)
drives a jerk-limited follower into swings at its limits around the target: inside every limit, and
0.25 rad from where it was told to go. Slowing the plan's clock there instead (time-optimal path
parameterisation, TOPP-RA from `toppra`) keeps the command on the model's path; it falls behind the chunk's
schedule, and the next chunk, computed from an observation of where the robot then is, starts from there
(core/plan_clock.py maps its stamp to plan time).

The path is the plan's spline from now to its end in action space, one coordinate per position-like column
with its velocity and acceleration limits (joint and gripper positions; an end-effector's x, y, z with its
Cartesian limits), plus plan time itself capped at the speed scale. Orientation columns (rot6d) and base
twists are left out: their limits are not box limits on the path's coordinates, and the limiters after the
plan keep them. The limits handed to TOPP-RA are shares of the contract's (ACCELERATION_SHARE): the
follower is jerk-limited and TOPP-RA's profile switches acceleration at once, so it needs room to catch up.
The profile ends at rest at the plan's end, where the plan's target stops too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

VELOCITY_SHARE = 0.95  # of each axis's velocity limit, for the retimed path
ACCELERATION_SHARE = 0.7  # of each axis's acceleration limit (the jerk-limited follower's catch-up needs the rest)
GRID_PER_STEP = 1  # TOPP-RA stages per plan step (its constraints hold at the gridpoints, interpolated between)
SMOOTHING_S = 0.1  # [plan s] span of the central differences the path's derivatives are taken over
FEASIBLE_SHARE = 1.0  # a chunk within this share of the limits everywhere at the speed scale is not retimed


@dataclass(frozen=True)
class Profile:
    """The fastest plan-time rate σ [plan s per s] at each plan time of a grid (the rest: the speed scale)."""

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


class _PlanPath:
    """The plan's smoothed spline over [start, end] as toppra's geometric path (duck-typed
    AbstractGeometricPath), with plan time as one more coordinate."""

    def __init__(self, spline, columns: np.ndarray, start: float, end: float) -> None:  # noqa: ANN001 - CubicSpline
        self._spline, self._columns, self._interval = spline, columns, np.array([start, end])

    @property
    def dof(self) -> int:
        return len(self._columns) + 1

    @property
    def path_interval(self) -> np.ndarray:
        return self._interval

    def __call__(self, ss: np.ndarray | float, order: int = 0) -> np.ndarray:
        ss = np.atleast_1d(np.asarray(ss, dtype=float))
        values = smoothed(self._spline, ss, order)[:, self._columns]
        clock = ss if order == 0 else np.full(len(ss), 1.0 if order == 1 else 0.0)
        return np.column_stack([values, clock])


class Retimer:
    """TOPP-RA profiles of the plan's remaining path for the position-like action columns it is given."""

    def __init__(self, columns: np.ndarray, velocity_max: np.ndarray, acceleration_max: np.ndarray) -> None:
        self.columns = np.asarray(columns, dtype=int)
        self.velocity_max = np.asarray(velocity_max, dtype=float)
        self.acceleration_max = np.asarray(acceleration_max, dtype=float)
        self.computed = 0  # profiles computed (for benchmarks and tests)
        logging.getLogger("toppra").setLevel(logging.ERROR)  # its warnings are answered here

    def feasible(self, d1: np.ndarray, d2: np.ndarray, rate: float) -> bool:
        """Whether the path's derivatives at plan time (N, columns) keep FEASIBLE_SHARE of the limits at a
        constant rate."""
        return bool(np.all(np.abs(d1) * rate <= FEASIBLE_SHARE * self.velocity_max) and
                    np.all(np.abs(d2) * rate * rate <= FEASIBLE_SHARE * self.acceleration_max))

    def profile(self, spline, start: float, end: float, dt_s: float, rate_now: float,  # noqa: ANN001 - CubicSpline
                scale: float) -> Profile | None:
        """The profile from plan time `start` (path rate rate_now there) to `end`; None where the path is
        feasible at the speed scale as it is, there is nothing to retime, or no profile was found."""
        if not len(self.columns) or end - start < 0.5 * dt_s:
            return None
        count = max(2, int(np.ceil((end - start) / dt_s * GRID_PER_STEP)))
        grid = np.linspace(start, end, count + 1)
        d1, d2 = smoothed(spline, grid, 1)[:, self.columns], smoothed(spline, grid, 2)[:, self.columns]
        if self.feasible(d1, d2, scale):
            return None
        import toppra.algorithm as algorithm
        import toppra.constraint as constraint

        path = _PlanPath(spline, self.columns, start, end)
        velocity = np.append(VELOCITY_SHARE * self.velocity_max, scale)  # plan time itself: at most the speed scale
        acceleration = np.append(ACCELERATION_SHARE * self.acceleration_max, 1e3)  # [plan s/s²]: unconstrained
        problem = algorithm.TOPPRA(
            [constraint.JointVelocityConstraint(velocity), constraint.JointAccelerationConstraint(acceleration)],
            path, gridpoints=grid, solver_wrapper="seidel")
        self.computed += 1
        sd_start = min(max(rate_now, 0.0), scale)
        _, rates, _, controllable = problem.compute_parameterization(sd_start, 0.0, return_data=True)
        if rates is not None and np.all(np.isfinite(rates)):
            return Profile(grid, np.asarray(rates, dtype=float))
        if controllable is not None and np.all(np.isfinite(controllable)):
            # Too fast here to slow down in time for what follows (or the forward pass failed numerically):
            # the upper bound of the controllable sets, a rate from which every later limit is still met,
            # which the clock then follows from the rate it has.
            return Profile(grid, np.sqrt(np.maximum(controllable[:, 1], 0.0)))
        return Profile(np.array([start, end]), np.full(2, sd_start))  # no controllable set: hold the rate
