"""The path a JointTrajectoryController runs between ticks in horizon mode, and where a late tick takes it up.

Each tick sends one time-indexed path, stamped with the tick's time T on the executor's clock:
point 0 is the command state at T (already due when it arrives, so the stock controller samples inside the
path: neither the delivery delay nor the measured state at receipt moves the robot off it), then the
commands of the next ticks along the plan, then the fastest stop within the limits, ending at rest (what a
stock controller accepts with its defaults). A late or duplicate message lands on the same path. A tick
that comes late — the executor starved of CPU, its messages bunched — takes the command state from the
path the controller has been running, where the controller is now, so that the next message continues
the motion instead of pulling the robot back to where the executor last was.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Horizon:
    """Point k is the command state (every limiter axis) at start_s + k·period_s; the last is at rest."""

    start_s: float
    period_s: float
    positions: np.ndarray  # (K, axes)
    velocities: np.ndarray
    accelerations: np.ndarray

    @property
    def times_from_start_s(self) -> np.ndarray:
        return self.period_s * np.arange(len(self.positions))

    def ticks_since(self, now: float) -> int:
        """Whole control periods from start_s to now (rounded: a tick's own jitter is not a missed tick)."""
        return round((now - self.start_s) / self.period_s)

    def state(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The command state at point k; past the end, the last point (where the controller holds)."""
        k = min(max(k, 0), len(self.positions) - 1)
        return self.positions[k].copy(), self.velocities[k].copy(), self.accelerations[k].copy()
