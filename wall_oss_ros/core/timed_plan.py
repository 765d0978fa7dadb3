"""The plan on its own clock: chunks merged at plan time, samples handed out with real-time rates.

The executor's timing model in one place (docs/explanation/executor-and-safety.md, "Timing"): a chunk's
step i targets plan time τ(t_obs) + i·dt; the plan is sampled at τ(now); τ runs at the speed scale, slower
where the retimer finds the remaining plan infeasible (core/plan_clock.py, core/retiming.py). What leaves
here is in real time: rates multiplied by σ (σ² for rates of change), base twists by σ, and the
committed steps (for RTC and the chunk request) stamped with the real time they will run at, dt/scale apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from wall_oss_ros.core.plan import MergeStrategy, Plan
from wall_oss_ros.core.plan_clock import PlanClock
from wall_oss_ros.core.retiming import Profile, Retimer

Motion = tuple[np.ndarray, np.ndarray, np.ndarray]  # value, rate, rate of change


class TimedPlan:
    def __init__(self, plan: Plan, clock: PlanClock, retimer: Retimer | None, velocity_cols: np.ndarray,
                 period_s: float) -> None:
        """velocity_cols: action columns that are velocities (base twists), scaled by σ."""
        self.plan, self.clock, self.retimer, self.period_s = plan, clock, retimer, period_s
        self.velocity_cols = np.asarray(velocity_cols, dtype=int)
        self._profile: Profile | None = None
        self._stale = False  # the profile no longer fits (a new plan, a new speed scale)
        self._schedule_start = math.nan  # observation time of the chunk the plan follows

    # ---------------------------------------------------------------- clock
    def reset(self, now: float) -> None:
        self.clock.reset(now)
        self._profile, self._stale, self._schedule_start = None, False, math.nan

    @property
    def tau(self) -> float:
        return self.clock.tau

    @property
    def speed_scale(self) -> float:
        return self.clock.scale

    def set_speed_scale(self, scale: float) -> None:
        self.clock.set_scale(scale)
        self._stale = True

    def advance(self, now: float) -> float:
        """The clock to `now` (every tick, with or without a plan). Returns σ."""
        if self._stale:
            self._retime()
        profile = self._profile
        return self.clock.advance(now, profile.cap if profile is not None else None)

    def lag_s(self) -> float:
        """Real time the plan is behind the schedule of the chunk it follows [s]."""
        return 0.0 if self.plan.empty else self.clock.lag_s(self._schedule_start)

    # ---------------------------------------------------------------- plan
    def clear(self) -> None:
        self.plan.clear()
        self._profile, self._schedule_start = None, math.nan

    def merge(self, chunk_id: int, t_obs: float, dt_s: float, targets: np.ndarray, now: float,
              command_anchor: Callable[[], Motion]) -> int:
        """Merge a chunk observed at t_obs (real time) arriving at now; returns the steps used.

        command_anchor: the command's own state in real-time rates, for a plan that is empty or over."""
        clock = self.clock
        tau_now = clock.plan_time(now)
        if not self.plan.empty and tau_now <= self.plan.end_time():
            anchor = self.plan.sample_motion(tau_now)
        else:
            value, rate, rate2 = command_anchor()
            sigma = clock.rate  # back to plan time: the inverse of sample()
            value, rate, rate2 = value.copy(), rate / sigma, rate2 / (sigma * sigma)
            cols = self.velocity_cols
            value[cols] /= sigma
            rate[cols] /= sigma
            anchor = (value, rate, rate2)
        used = self.plan.merge(chunk_id, clock.plan_time(t_obs), dt_s, targets, tau_now, anchor, rate=clock.nominal)
        self._schedule_start = t_obs
        self._retime(tau_now)
        return used

    def _retime(self, start: float | None = None) -> None:
        self._stale = False
        self._profile = None
        path = self.plan.path()
        if self.retimer is None or path is None:
            return
        start = self.clock.tau if start is None else start
        plan = self.plan
        # Retimed only where the chunk's own steps ask too much: the splice onto the previous plan (a robot
        # at rest joining a moving chunk, a chunk that starts where the robot was seen) is the follower's to
        # catch up with, as without retiming.
        blend = plan.config.crossfade_steps if plan.config.strategy is MergeStrategy.CROSSFADE else 0
        first = min(plan.anchors + blend, len(plan.times) - 1)
        self._profile = self.retimer.profile(path, start, max(start, float(plan.times[first])), plan.end_time(),
                                             self.clock.rate, self.clock.nominal)

    def sample(self, ticks_ahead: int = 0) -> Motion:
        """The plan's target `ticks_ahead` control periods from now (at this tick's rate σ), with rates per
        second of real time."""
        sigma = self.clock.rate
        value, rate, rate2 = self.plan.sample_feedforward(self.clock.tau + ticks_ahead * self.period_s * sigma)
        if sigma != 1.0:
            rate, rate2 = rate * sigma, rate2 * (sigma * sigma)
            cols = self.velocity_cols
            if len(cols):
                value[cols] *= sigma
                rate[cols] *= sigma
        return value, rate, rate2

    def ended(self) -> bool:
        return self.plan.empty or self.clock.tau >= self.plan.end_time()

    def remaining_steps(self) -> int:
        return self.plan.remaining_steps(self.clock.tau)

    def committed(self) -> tuple[float, float, np.ndarray]:
        """(real time of the first future step, real time between steps, future steps (K, D)), at the speed
        scale: what runs while the next chunk is computed."""
        start, dt, values = self.plan.committed(self.clock.tau)
        nominal = self.clock.nominal
        return self.clock.real_time(start), dt / nominal, values
