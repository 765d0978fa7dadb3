"""C1 cubic interpolation of plan knots: shape-preserving tangents, optionally a fixed first tangent.

scipy's CubicHermiteSpline builds the polynomial pieces; the tangents are computed here because scipy's
PCHIP does not let the first tangent be imposed, which a C1 splice onto the running plan needs. A single
time point is evaluated from the pieces' coefficients directly: scipy's per-call overhead (~18 µs) would
be most of a control tick.
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np
from scipy.interpolate import CubicHermiteSpline


def pchip_tangents(times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Fritsch-Carlson tangents (K, D): no overshoot between knots, zero slope at local extrema."""
    k = len(times)
    if k < 2:
        return np.zeros_like(values)
    h = np.diff(times)[:, None]
    delta = np.diff(values, axis=0) / h
    tangents = np.zeros_like(values)
    if k > 2:
        h0, h1 = h[:-1], h[1:]
        d0, d1 = delta[:-1], delta[1:]
        w1, w2 = 2 * h1 + h0, h1 + 2 * h0
        same_sign = (d0 * d1) > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            harmonic = (w1 + w2) / (w1 / d0 + w2 / d1)
        tangents[1:-1] = np.where(same_sign, harmonic, 0.0)
    # One-sided ends (three-point, limited so they do not overshoot).
    tangents[0] = _end_tangent(h[0], h[1] if k > 2 else h[0], delta[0], delta[1] if k > 2 else delta[0])
    tangents[-1] = _end_tangent(h[-1], h[-2] if k > 2 else h[-1], delta[-1], delta[-2] if k > 2 else delta[-1])
    return tangents


def _end_tangent(h0: np.ndarray, h1: np.ndarray, d0: np.ndarray, d1: np.ndarray) -> np.ndarray:
    d = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
    d = np.where(np.sign(d) != np.sign(d0), 0.0, d)
    return np.where((np.sign(d0) != np.sign(d1)) & (np.abs(d) > np.abs(3 * d0)), 3 * d0, d)


class KnotSpline:
    """Cubic Hermite spline through (times, values); constant beyond the last knot and before the first."""

    def __init__(self, times: np.ndarray, values: np.ndarray, first_tangent: np.ndarray | None = None) -> None:
        self.times = np.asarray(times, dtype=float)
        self.values = np.asarray(values, dtype=float)
        if len(self.times) == 1:
            self._spline = None
            return
        tangents = pchip_tangents(self.times, self.values)
        if first_tangent is not None:
            tangents[0] = first_tangent
        self._spline = CubicHermiteSpline(self.times, self.values, tangents, axis=0, extrapolate=False)
        c = self._spline.c  # (4, K-1, D): c[0]·s³ + c[1]·s² + c[2]·s + c[3], s = t - t_k
        self._c3, self._c2, self._c1, self._c0 = c[0], c[1], c[2], c[3]
        self._breaks = self.times.tolist()

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

    def sample_many(self, times: np.ndarray) -> np.ndarray:
        """Values (N, D) at many times, clamped like sample()."""
        times = np.asarray(times, dtype=float)
        if self._spline is None:
            return np.repeat(self.values[-1:], len(times), axis=0)
        return self._spline(np.clip(times, self.times[0], self.times[-1]))
