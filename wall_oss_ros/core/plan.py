"""The executor's plan: timed action knots from chunks, merged by a strategy, sampled as a C1 spline.

The limiter follows the plan's value with the plan's rate and rate of change as feed-forward. Those are
central differences over `feedforward_window_s` (reaching back into the plans this one replaced), not the
spline's instantaneous derivatives: through the knots of a jittery chunk (policy noise at 50 Hz) the
derivatives are noise divided by dt, and a jerk-limited follower fed that noise answers like a relay, in
swings at its velocity limit far larger than the noise. The differences keep smooth motion (their error
is (ω·window)²/24 of the rate for a sine of ω) and average the jitter out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from wall_oss_ros.core.chunk import ChunkRejectedError
from wall_oss_ros.core.interpolation import KnotSpline


class MergeStrategy(str, Enum):
    REPLACE = "replace"  # the new chunk replaces the plan from now on
    CROSSFADE = "crossfade"  # blend from the old plan to the new chunk over a window of steps
    ENSEMBLE = "ensemble"  # ACT temporal ensembling: exponentially weighted mean of every prediction per time
    RTC = "rtc"  # the policy already inpainted the committed prefix: use the chunk as it is


@dataclass(frozen=True)
class PlanConfig:
    strategy: MergeStrategy = MergeStrategy.CROSSFADE
    crossfade_steps: int = 4  # steps over which crossfade moves from the old plan to the new chunk
    ensemble_decay: float = 0.01  # ACT's m: weight of the i-th newer prediction of a time is exp(-m·i)
    execute_fraction: float = 0.8  # receding horizon: share of each chunk that may run
    lookahead_s: float = 0.0  # drop steps due earlier than now + lookahead (controller / transport delay)
    request_threshold_steps: int = 8  # ask for the next chunk when fewer steps remain
    feedforward_window_s: float = 0.2  # [s] span of the rate and rate-of-change estimates handed to the limiter

    def __post_init__(self) -> None:
        if not 0.0 < self.execute_fraction <= 1.0:
            raise ValueError(f"execute_fraction must be in (0, 1], got {self.execute_fraction}")
        if self.crossfade_steps < 0 or self.request_threshold_steps < 0 or self.lookahead_s < 0:
            raise ValueError("crossfade_steps, request_threshold_steps and lookahead_s must not be negative")
        if not (self.feedforward_window_s >= 0.0 and math.isfinite(self.feedforward_window_s)):
            raise ValueError(f"feedforward_window_s must be finite and not negative, got {self.feedforward_window_s}")
        if not self.ensemble_decay >= 0.0:
            raise ValueError(f"ensemble_decay must not be negative, got {self.ensemble_decay}")


class Plan:
    """Knots (time, target) in the contract's absolute action space; the first `anchors` knots splice."""

    MIN_GAP_FRACTION = 0.25  # steps closer to the anchor than this share of dt are dropped

    def __init__(self, continuous: np.ndarray, config: PlanConfig) -> None:
        self.continuous = np.asarray(continuous, dtype=bool)
        self.config = config
        self.clear()

    def clear(self) -> None:
        dim = len(self.continuous)
        self.times = np.zeros(0)
        self.values = np.zeros((0, dim))
        self.weights = np.zeros(0)
        self.counts = np.zeros(0)
        self.chunk_id: int | None = None
        self.anchors = 0  # leading knots that splice onto the previous plan (not chunk steps)
        self.dt_s = 0.0
        self._spline: KnotSpline | None = None
        self._replaced: list[tuple[float, KnotSpline]] = []  # (start time, spline) of recent earlier plans

    @property
    def empty(self) -> bool:
        return self._spline is None

    def end_time(self) -> float:
        return float(self.times[-1]) if len(self.times) else -math.inf

    def path(self):  # noqa: ANN201 - scipy CubicSpline or None
        """The plan's spline as scipy's CubicSpline, derivatives by its second argument (None: a single knot
        or no plan); NaN outside the knots."""
        return None if self._spline is None else self._spline.piecewise

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Target and its rate at t (held at the last knot after the end)."""
        assert self._spline is not None, "sample() on an empty plan"
        return self._spline.sample(t)

    def sample_motion(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Target, rate and rate of change at t."""
        assert self._spline is not None, "sample_motion() on an empty plan"
        return self._spline.sample_motion(t)

    def _value(self, t: float) -> np.ndarray:
        """The target at t as it was planned then: from the plan that was running at t."""
        if t >= self._start or not self._replaced:
            return self._spline.value(t)
        for start, spline in reversed(self._replaced):
            if start <= t:
                return spline.value(t)
        return self._replaced[0][1].value(t)

    def sample_feedforward(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Target at t, with its rate and rate of change averaged over the feed-forward window."""
        assert self._spline is not None, "sample_feedforward() on an empty plan"
        h = self.config.feedforward_window_s
        if h == 0.0:
            return self._spline.sample_motion(t)
        value = self._spline.value(t)
        rate = (self._value(t + 0.5 * h) - self._value(t - 0.5 * h)) / h
        rate2 = (self._value(t + h) - 2.0 * value + self._value(t - h)) / (h * h)
        return value, rate, rate2

    def remaining_steps(self, now: float) -> int:
        return int(np.count_nonzero(self.times[self.anchors:] > now))

    def committed(self, now: float) -> tuple[float, float, np.ndarray]:
        """(time of the first future step, dt, future steps (K, D)): what runs while the next chunk is computed."""
        future = self.times > now
        future[:self.anchors] = False
        if not np.any(future):
            return now, self.dt_s, np.zeros((0, self.values.shape[1]))
        return float(self.times[future][0]), self.dt_s, self.values[future].copy()

    def merge(self, chunk_id: int, t_obs: float, dt_s: float, targets: np.ndarray, now: float,
              anchor: tuple[np.ndarray, ...], rate: float = 1.0) -> int:
        """Merge a chunk's absolute targets (H, D); returns how many of its steps entered the plan.

        Times are plan times (core/plan_clock.py): t_obs and now as the plan clock has them, `rate` its
        speed (plan seconds per second, for the real-time lookahead). anchor: (value, rate, ...) of the target
        at `now`, so the spliced plan is C1 where it starts.
        """
        cfg = self.config
        n_exec = max(1, math.ceil(cfg.execute_fraction * len(targets)))
        times = t_obs + dt_s * np.arange(n_exec)
        keep = times > now + cfg.lookahead_s * rate + self.MIN_GAP_FRACTION * dt_s
        if not np.any(keep):
            raise ChunkRejectedError("rejected_chunk", f"chunk {chunk_id} arrived {(now - t_obs) / rate:.3f} s "
                                     f"after its observation: all {n_exec} executable steps are already past")
        times, new = times[keep], np.array(targets[:n_exec][keep], dtype=float)
        anchor_value, anchor_rate = (np.asarray(a, dtype=float) for a in anchor[:2])
        if np.any(self.continuous):
            seq = np.vstack([anchor_value[None, self.continuous], new[:, self.continuous]])
            new[:, self.continuous] = np.unwrap(seq, axis=0)[1:]
        weights, counts = np.ones(len(times)), np.ones(len(times))
        if not self.empty and cfg.strategy in (MergeStrategy.CROSSFADE, MergeStrategy.ENSEMBLE):
            old = self._spline.sample_many(times)
            if cfg.strategy is MergeStrategy.CROSSFADE:
                ramp = np.clip((np.arange(len(times)) + 1) / (cfg.crossfade_steps + 1), 0.0, 1.0)
                w = ramp * ramp * (3 - 2 * ramp)  # smoothstep: no kink where the blend starts or ends
                new = (1 - w)[:, None] * old + w[:, None] * new
            else:
                a = self.anchors
                old_w = np.interp(times, self.times[a:], self.weights[a:], right=0.0)
                old_n = np.rint(np.interp(times, self.times[a:], self.counts[a:], right=0.0))
                w_new = np.exp(-cfg.ensemble_decay * old_n)
                new = (old_w[:, None] * old + w_new[:, None] * new) / (old_w + w_new)[:, None]
                weights, counts = old_w + w_new, old_n + 1
        if self._spline is not None:
            self._replaced.append((float(self.times[0]), self._spline))
            while len(self._replaced) > 1 and self._replaced[1][0] <= now - cfg.feedforward_window_s:
                self._replaced.pop(0)  # the window reaches back no further than now - window
        knot_t, knot_v, first = [now], [anchor_value], anchor_rate
        self.times = np.concatenate([knot_t, times])
        self.values = np.vstack([*knot_v, new])
        self.weights = np.concatenate([weights[:1]] * len(knot_t) + [weights])
        self.counts = np.concatenate([counts[:1]] * len(knot_t) + [counts])
        self.anchors = len(knot_t)
        self.chunk_id, self.dt_s = chunk_id, dt_s
        self._spline = KnotSpline(self.times, self.values, first_tangent=first)
        self._start = float(self.times[0])
        return len(times)
