"""C2 cubic spline through plan knots with an imposed first tangent (the C1 splice onto the running plan).

scipy's CubicSpline builds it (first rate clamped, natural end). Its acceleration is continuous between
splices, so a jerk-limited follower can track it exactly; between the knots of a jumpy chunk it may
overshoot, which the position limits still bound. A single time point is evaluated from the pieces'
coefficients directly: scipy's per-call overhead (~18 µs) would be most of a control tick.
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np
from scipy.interpolate import CubicSpline


class KnotSpline:
    """Cubic Hermite spline through (times, values); constant beyond the last knot and before the first."""

    def __init__(self, times: np.ndarray, values: np.ndarray, first_tangent: np.ndarray | None = None) -> None:
        self.times = np.asarray(times, dtype=float)
        self.values = np.asarray(values, dtype=float)
        if len(self.times) == 1:
            self._spline = None
            return
        dim = self.values.shape[1]
        start = (1, first_tangent) if first_tangent is not None else (2, np.zeros(dim))
        natural_end = (2, np.zeros(dim))
        self._spline = CubicSpline(self.times, self.values, axis=0, extrapolate=False, bc_type=(start, natural_end))
        # Pieces c[0]·s³ + c[1]·s² + c[2]·s + c[3], s = t - x_k, over the knots x.
        self._x, c = self.times, self._spline.c
        self._c3, self._c2, self._c1, self._c0 = c[0], c[1], c[2], c[3]
        self._breaks = self._x.tolist()

    @property
    def piecewise(self) -> CubicSpline | None:
        """scipy's spline (derivatives by its second argument; NaN outside the knots), None for one knot."""
        return self._spline

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Value and time derivative at t; clamped to the first / last knot outside the knot range."""
        if self._spline is None or t >= self._breaks[-1]:
            return self.values[-1].copy(), np.zeros(self.values.shape[1])
        if t < self._breaks[0]:
            return self.values[0].copy(), np.zeros(self.values.shape[1])
        k = bisect_right(self._breaks, t) - 1
        s = t - self._breaks[k]
        c3, c2, c1 = self._c3[k], self._c2[k], self._c1[k]
        return ((c3 * s + c2) * s + c1) * s + self._c0[k], (3.0 * c3 * s + 2.0 * c2) * s + c1

    def value(self, t: float) -> np.ndarray:
        """The value alone at t, clamped like sample() (the cheapest evaluation)."""
        breaks = self._breaks if self._spline is not None else None
        if breaks is None or t >= breaks[-1]:
            return self.values[-1].copy()
        if t < breaks[0]:
            return self.values[0].copy()
        k = bisect_right(breaks, t) - 1
        s = t - breaks[k]
        return ((self._c3[k] * s + self._c2[k]) * s + self._c1[k]) * s + self._c0[k]

    def sample_motion(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Value, first and second time derivative at t (derivatives zero outside the knot range)."""
        if self._spline is None or not self._breaks[0] <= t < self._breaks[-1]:
            value, rate = self.sample(t)
            return value, rate, np.zeros_like(rate)
        k = bisect_right(self._breaks, t) - 1
        s = t - self._breaks[k]
        c3s, c2 = self._c3[k] * s, self._c2[k]
        return ((c3s + c2) * s + self._c1[k]) * s + self._c0[k], (3.0 * c3s + 2.0 * c2) * s + self._c1[k], \
            6.0 * c3s + 2.0 * c2

    def sample_many(self, times: np.ndarray) -> np.ndarray:
        """Values (N, D) at many times, clamped like sample()."""
        times = np.asarray(times, dtype=float)
        if self._spline is None:
            return np.repeat(self.values[-1:], len(times), axis=0)
        return self._spline(np.clip(times, self.times[0], self.times[-1]))
