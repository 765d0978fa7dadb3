"""What a stock JointTrajectoryController (ros2_controllers Jazzy 4.x / Kilted 5.x) does with a topic message.

The simulated robot follows the stock rules, so that a message a real controller would drop is dropped in
our tests too (the executor's moving one-point "stream" commands were accepted by the old simulation and
rejected 3000 times in 15 s by a real Kilted controller, which never moved):
- refused, with the controller's reason and the running trajectory kept: no joints or no points; joints
  that are not the controller's (allow_partial_joints_goal false); time_from_start not strictly
  increasing; position/velocity sizes that do not match; a last point with a non-zero velocity unless
  allow_nonzero_velocity_at_trajectory_end; a non-zero header.stamp whose trajectory has already ended;
- an accepted message replaces the running trajectory at once (no splicing: that exists only on
  ros2_controllers master). It starts at header.stamp (zero: on receipt); until its first point the
  motion goes from the state at receipt — measured, or the last desired state with
  interpolate_from_desired_state — to the first point; a first point already due on receipt makes the
  sampling jump into the segment containing now (a step);
- through the points: cubic Hermite with velocities, linear without; the last point is held.
No installable package provides this outside ros2_control (C++, not on PyPI).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicHermiteSpline


class TrajectoryRejectedError(ValueError):
    """A message the stock controller drops; the text is the controller's reason."""


@dataclass(frozen=True)
class JtcSettings:
    """The stock controller's parameters that decide what it accepts and where a new trajectory starts."""

    allow_nonzero_velocity_at_trajectory_end: bool = False  # the stock default
    interpolate_from_desired_state: bool = False  # the stock default: start from the measured state


@dataclass(frozen=True)
class _Trajectory:
    receipt_s: float  # the state before the trajectory is taken at this time
    times: np.ndarray  # (K,) absolute time of each point [s]
    positions: np.ndarray  # (K, J)
    spline: CubicHermiteSpline | None  # receipt state → points (None: linear)
    knot_times: np.ndarray  # the spline's (or the linear path's) knots
    knots: np.ndarray


class TrajectoryFollower:
    def __init__(self, joints: Sequence[str], initial: np.ndarray, settings: JtcSettings | None = None) -> None:
        self.joints = tuple(joints)
        self.settings = settings or JtcSettings()
        self._hold = np.array(initial, dtype=float)
        self._current: _Trajectory | None = None

    def _order(self, names: Sequence[str]) -> np.ndarray:
        if not names:
            raise TrajectoryRejectedError("Empty joint names on incoming trajectory.")
        if sorted(names) != sorted(self.joints):
            raise TrajectoryRejectedError(f"Incoming joints {list(names)} do not match the controller's joints "
                                     f"{list(self.joints)} (allow_partial_joints_goal is false)")
        return np.array([list(names).index(j) for j in self.joints])

    def accept(self, names: Sequence[str], stamp_s: float, times_from_start: Sequence[float],
               positions: Sequence[Sequence[float]], velocities: Sequence[Sequence[float]] | None,
               now_s: float, measured: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Replace the trajectory, or raise TrajectoryRejectedError (the running one kept) as the controller would.

        measured: the robot's (positions, velocities) at receipt, in this controller's joint order."""
        order = self._order(names)
        t = np.asarray(times_from_start, dtype=float)
        p = np.asarray(positions, dtype=float)
        if len(t) == 0:
            raise TrajectoryRejectedError("Empty trajectory received.")
        if p.shape != (len(t), len(self.joints)) or not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))):
            raise TrajectoryRejectedError(f"{len(t)} points with positions of shape {p.shape} (or not finite): "
                                          f"expected ({len(t)}, {len(self.joints)})")
        if t[0] < 0:
            raise TrajectoryRejectedError(f"time_from_start of the first point is negative ({t[0]})")
        for i in range(1, len(t)):
            if not t[i] > t[i - 1]:
                raise TrajectoryRejectedError(f"Time between points {i - 1} and {i} is not strictly increasing, it is "
                                         f"{t[i - 1]} and {t[i]} respectively")
        v = None
        if velocities is not None:
            v = np.asarray(velocities, dtype=float)
            if v.shape != p.shape or not np.all(np.isfinite(v)):
                raise TrajectoryRejectedError(f"velocities of shape {v.shape} (or not finite): expected {p.shape}")
            v = v[:, order]
            if not self.settings.allow_nonzero_velocity_at_trajectory_end:
                moving = np.flatnonzero(v[-1] != 0.0)
                if len(moving):
                    j = int(moving[0])
                    raise TrajectoryRejectedError(f"Velocity of last trajectory point of joint {self.joints[j]} is not "
                                             f"zero: {v[-1, j]:.6f}")
        p = p[:, order]
        start = stamp_s if stamp_s > 0 else now_s
        if stamp_s > 0 and start + t[-1] < now_s:
            raise TrajectoryRejectedError(f"Received trajectory with non-zero start time ({stamp_s:.3f}) that ends in "
                                          f"the past ({start + t[-1]:.3f} < {now_s:.3f})")
        if measured is not None and not self.settings.interpolate_from_desired_state:
            p0, v0 = (np.asarray(x, dtype=float) for x in measured)
        else:
            p0, v0 = self.sample(now_s)
        times = start + t
        ahead = times > now_s  # points already due on receipt are jumped into, not approached
        if ahead.all():
            knot_times, knots = np.concatenate([[now_s], times]), np.vstack([p0, p])
            knot_v = None if v is None else np.vstack([v0, v])
        else:
            first = int(np.argmax(ahead)) if ahead.any() else len(times) - 1
            k = max(first - 1, 0)  # the segment containing now starts at the last due point
            knot_times, knots, knot_v = times[k:], p[k:], (None if v is None else v[k:])
        spline = None
        if knot_v is not None and len(knot_times) > 1:
            spline = CubicHermiteSpline(knot_times, knots, knot_v, axis=0)
        self._current = _Trajectory(now_s, times, p, spline, knot_times, knots)

    def hold(self, positions: Sequence[float]) -> None:
        """A forward command: go to these positions now and stay (a forward_command_controller)."""
        p = np.asarray(positions, dtype=float)
        if p.shape != (len(self.joints),) or not np.all(np.isfinite(p)):
            raise ValueError(f"expected {len(self.joints)} finite positions, got {p.tolist()}")
        self._current = None
        self._hold = p.copy()

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Desired (positions, velocities) at time t."""
        traj = self._current
        if traj is None:
            return self._hold.copy(), np.zeros_like(self._hold)
        if t >= traj.times[-1]:
            return traj.positions[-1].copy(), np.zeros(len(self.joints))
        if t < traj.knot_times[0]:
            return traj.knots[0].copy(), np.zeros(len(self.joints))
        if traj.spline is not None:
            return traj.spline(t), traj.spline(t, 1)
        k = int(np.searchsorted(traj.knot_times, t, side="right")) - 1
        span = traj.knot_times[k + 1] - traj.knot_times[k]
        w = (t - traj.knot_times[k]) / span
        velocity = (traj.knots[k + 1] - traj.knots[k]) / span
        return traj.knots[k] + w * (traj.knots[k + 1] - traj.knots[k]), velocity
