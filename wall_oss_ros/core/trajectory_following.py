"""What a joint trajectory controller does with a trajectory topic message, for a simulated robot.

The semantics of ros2_controllers' JointTrajectoryController topic interface: a new trajectory replaces
the running one from its start time (header.stamp; zero means on receipt), the motion starts from the
desired state at that time, passes through the points at their time_from_start (cubic Hermite when
velocities are given, linear otherwise) and holds the last point. The sim needs this so that the executor
drives it exactly as it drives a real controller; no installable package provides it outside ros2_control.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicHermiteSpline


@dataclass(frozen=True)
class _Segment:
    start_s: float
    times: np.ndarray  # (K,) absolute [s], the first knot at start_s
    positions: np.ndarray  # (K, J)
    spline: CubicHermiteSpline | None  # None: linear interpolation


class TrajectoryFollower:
    def __init__(self, joints: Sequence[str], initial: np.ndarray) -> None:
        self.joints = tuple(joints)
        self._hold = np.array(initial, dtype=float)
        self._current: _Segment | None = None
        self._previous: _Segment | None = None  # runs until the current one starts

    def _order(self, names: Sequence[str]) -> np.ndarray:
        if sorted(names) != sorted(self.joints):
            raise ValueError(f"joint names {list(names)} are not this controller's {list(self.joints)}")
        return np.array([list(names).index(j) for j in self.joints])

    def accept(self, names: Sequence[str], stamp_s: float, times_from_start: Sequence[float],
               positions: Sequence[Sequence[float]], velocities: Sequence[Sequence[float]] | None,
               now_s: float) -> None:
        """Replace the trajectory; ValueError (the running one kept) for a malformed message."""
        order = self._order(names)
        t = np.asarray(times_from_start, dtype=float)
        p = np.asarray(positions, dtype=float)
        if len(t) == 0 or p.shape != (len(t), len(self.joints)):
            raise ValueError(f"{len(t)} points with positions of shape {p.shape}: expected ({len(t)}, "
                             f"{len(self.joints)})")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))) or t[0] < 0 or np.any(np.diff(t) <= 0):
            raise ValueError("time_from_start must be finite, non-negative and increasing; positions finite")
        v = None
        if velocities is not None:
            v = np.asarray(velocities, dtype=float)
            if v.shape != p.shape or not np.all(np.isfinite(v)):
                raise ValueError(f"velocities of shape {v.shape} (or not finite): expected {p.shape}")
            v = v[:, order]
        p = p[:, order]
        start = stamp_s if stamp_s > 0 else now_s
        p0, v0 = self.sample(start)
        if t[0] == 0:  # a first point at the start time replaces the start state
            p0, v0 = p[0], (v[0] if v is not None else np.zeros(len(self.joints)))
            t, p, v = t[1:], p[1:], (None if v is None else v[1:])
        times = np.concatenate([[start], start + t])
        knots = np.vstack([p0, p]) if len(p) else p0[None]
        spline = None
        if v is not None and len(times) > 1:
            spline = CubicHermiteSpline(times, knots, np.vstack([v0, v]), axis=0)
        if start <= now_s:
            self._previous = None
        elif self._current is not None and self._current.start_s <= now_s:
            self._previous = self._current  # runs until the new one starts (an unstarted one is dropped)
        self._current = _Segment(start, times, knots, spline)

    def hold(self, positions: Sequence[float]) -> None:
        """A forward command: go to these positions now and stay (a forward_command_controller)."""
        p = np.asarray(positions, dtype=float)
        if p.shape != (len(self.joints),) or not np.all(np.isfinite(p)):
            raise ValueError(f"expected {len(self.joints)} finite positions, got {p.tolist()}")
        self._current = self._previous = None
        self._hold = p.copy()

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Desired (positions, velocities) at time t."""
        seg = self._current
        if seg is not None and t < seg.start_s and self._previous is not None:
            seg = self._previous
        if seg is None or t < seg.start_s:
            return self._hold.copy(), np.zeros_like(self._hold)
        if t >= seg.times[-1]:
            return seg.positions[-1].copy(), np.zeros(len(self.joints))
        if seg.spline is not None:
            return seg.spline(t), seg.spline(t, 1)
        k = int(np.searchsorted(seg.times, t, side="right")) - 1
        span = seg.times[k + 1] - seg.times[k]
        w = (t - seg.times[k]) / span
        velocity = (seg.positions[k + 1] - seg.positions[k]) / span
        return seg.positions[k] + w * (seg.positions[k + 1] - seg.positions[k]), velocity
