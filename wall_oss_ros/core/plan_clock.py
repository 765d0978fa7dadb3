"""Plan time τ: the clock the plan runs on, stretched by the speed scale and slowed where the plan is infeasible.

A chunk computed from an observation at t_obs has its step i at plan time τ(t_obs) + i·dt, and the executor
samples the plan at τ(now). τ advances at the rate σ = dτ/dt: the speed scale (ramped toward the value the
user sets, at most `scale_rate_per_s` per second, so a change never steps the target velocity by more than
a tick's share), lowered further where the retimer (core/retiming.py) finds the plan infeasible at that
speed. At scale 1 on a feasible plan σ is exactly 1 and τ equals t to the last bit: the plan runs on the
executor's own clock.

Rates follow: a plan rate dx/dτ is σ·dx/dτ per second, its rate of change σ²·d²x/dτ² (the σ̇ term left
to the follower's servo). A velocity action (a base twist) is a rate of the path itself: it is scaled by σ.

The clock keeps its recent history (t, τ, τ as scheduled at the speed scale alone), so that the stamp of an
observation a few hundred milliseconds old maps to the plan time the robot was at then — which is where
the chunk computed from it starts — and the lag behind the schedule can be reported.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import numpy as np

MIN_RATE_SHARE = 0.25  # retiming slows the plan at most 4×: what needs more (a jump) is the follower's to chase


def check_speed_scale(scale: float) -> float:
    """The speed scale as a float in (0, 1], or ValueError saying why not."""
    value = float(scale)
    if not (0.0 < value <= 1.0):
        raise ValueError(f"speed_scale must be in (0, 1], got {scale!r}")
    return value


class PlanClock:
    def __init__(self, scale: float = 1.0, scale_rate_per_s: float = 1.0, history_s: float = 5.0) -> None:
        if not scale_rate_per_s > 0.0:
            raise ValueError(f"speed_scale_rate_per_s must be positive, got {scale_rate_per_s}")
        self.scale = check_speed_scale(scale)  # what the user asked for
        self.scale_rate_per_s = float(scale_rate_per_s)
        self.history_s = float(history_s)
        self.reset(0.0)

    def reset(self, now: float) -> None:
        """τ := now, at the speed scale (a fresh start, or a clock that jumped back)."""
        self.now = float(now)
        self.nominal = self.scale  # the speed scale as ramped so far
        self.rate = self.nominal  # σ this tick
        self._behind = 0.0  # t − τ [s]
        self._scheduled_behind = 0.0  # t − τ at the speed scale alone (no retiming) [s]
        self._history: deque[tuple[float, float, float]] = deque()
        self._record()

    @property
    def tau(self) -> float:
        """Plan time now [s]."""
        return self.now - self._behind

    def set_scale(self, scale: float) -> None:
        self.scale = check_speed_scale(scale)

    def advance(self, now: float, cap: Callable[[float], float] | None = None) -> float:
        """Move to `now`; cap(τ) is the fastest rate the plan allows at τ (None: any). Returns σ."""
        dt = max(0.0, float(now) - self.now)
        step = self.scale_rate_per_s * dt
        self.nominal = min(max(self.scale, self.nominal - step), self.nominal + step)
        rate = self.nominal
        if cap is not None:
            rate = max(MIN_RATE_SHARE * self.nominal, min(rate, float(cap(self.tau))))
        self.rate = rate
        if rate != 1.0:
            self._behind += (1.0 - rate) * dt
        if self.nominal != 1.0:
            self._scheduled_behind += (1.0 - self.nominal) * dt
        self.now = max(self.now, float(now))
        self._record()
        return rate

    def _record(self) -> None:
        h = self._history
        h.append((self.now, self.tau, self.now - self._scheduled_behind))
        while len(h) > 2 and h[1][0] <= self.now - self.history_s:
            h.popleft()

    def _series(self) -> tuple[list[float], list[float], list[float]]:
        """The history as (times, plan times, scheduled plan times)."""
        times, taus, scheduled = zip(*self._history, strict=True)
        return list(times), list(taus), list(scheduled)

    def plan_time(self, t: float) -> float:
        """τ at time t: from the history for a past t, at the speed scale beyond now."""
        if t >= self.now:
            return self.tau + (t - self.now) * self.nominal
        times, taus, _ = self._series()
        if t <= times[0]:  # older than the history: as if it ran at the speed scale since
            return taus[0] - (times[0] - t) * self.nominal
        return float(np.interp(t, times, taus))

    def real_time(self, tau: float) -> float:
        """When the plan reaches τ (ahead of now), at the speed scale."""
        return self.now + (tau - self.tau) / self.nominal

    def lag_s(self, since: float) -> float:
        """How far the plan is behind its schedule [s of real time] since time `since` (e.g. the active
        chunk's observation): the plan time the speed scale alone would have covered, less what was covered."""
        if not self._history or math.isnan(since):
            return 0.0
        times, taus, scheduled = self._series()
        start = max(since, times[0])
        if start >= self.now:
            return 0.0
        covered = self.tau - float(np.interp(start, times, taus))
        planned = scheduled[-1] - float(np.interp(start, times, scheduled))
        return max(0.0, (planned - covered) / self.nominal)
