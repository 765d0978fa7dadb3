"""The path the executor sends to JointTrajectoryControllers each tick (horizon mode), and what it means for the
next tick when ticks were missed: the controllers ran on along it, so the command continues from there.

See core/horizon.py for the path's layout and the stock controller's rules it obeys.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from wall_oss_ros.core.executor_axes import AxisLayout
from wall_oss_ros.core.horizon import Horizon
from wall_oss_ros.core.safety.motion import MotionLimiter
from wall_oss_ros.core.target_stage import TargetStage

# (k steps ahead) → the plan's (value, rate, rate of change) k control periods after this tick.
PlanSampler = Callable[[int], tuple[np.ndarray, np.ndarray, np.ndarray]]
State = tuple[np.ndarray, np.ndarray, np.ndarray]  # positions, velocities, accelerations per axis


class SentPath:
    def __init__(self, layout: AxisLayout, targets: TargetStage, period_s: float, preview_brake: np.ndarray) -> None:
        """preview_brake: axes whose preview brakes instead of following the plan (no IK per preview point, and
        the axes whose stops the collision guard checked, not their plans)."""
        self.layout, self.targets, self.period_s, self.preview_brake = layout, targets, period_s, preview_brake
        self.last: Horizon | None = None  # what the controllers run until the next tick
        self.missed_ticks = 0  # control periods without a tick, bridged by the path last sent
        self._shadow: MotionLimiter | None = None

    def take_up(self, now: float, lim: MotionLimiter) -> float:
        """This tick's time on the command path. After missed ticks, the controllers have run on along the
        path last sent: the command state of their axes becomes theirs at now (past its end: its end, at
        rest), so that the next path continues from where the robot is commanded to be. Only while nothing
        else has moved the command since. Not from the measured state: a position servo commanded to where
        its arm sags under gravity lets it drop."""
        sent, self.last = self.last, None
        jtc = self.layout.jtc_axes
        if sent is None or not (np.array_equal(sent.positions[1, jtc], lim.p[jtc])
                                and np.array_equal(sent.velocities[1, jtc], lim.v[jtc])):
            return now
        ticks = max(sent.ticks_since(now), 1)
        if ticks > 1:
            p, v, a = sent.state(ticks)
            lim.p[jtc], lim.v[jtc], lim.a[jtc] = p[jtc], v[jtc], a[jtc]
            self.missed_ticks += ticks - 1
        return sent.start_s + ticks * self.period_s

    def build(self, tick_time: float, before: State, lim: MotionLimiter, follow_points: int, halted: bool,
              sample: PlanSampler) -> Horizon:
        """Point 0: the command state before this tick's step (before); point 1: this tick's command (lim); then
        follow_points - 1 commands of a second limiter rolled forward along the plan through the same target
        stage (halted: it brakes); then the fastest stop to rest. EE orientation axes hold and velocity axes
        carry zero positions (JTC groups have neither). Records no intervention."""
        lay = self.layout
        if self._shadow is None:
            self._shadow = MotionLimiter(lay.limits, lay.velocity_axes, self.period_s, servo_axes=lay.servo_axes)
        shadow, rot = self._shadow, lay.rotation_axes
        shadow.p, shadow.v, shadow.a = lim.p.copy(), lim.v.copy(), lim.a.copy()
        ps, vs, as_ = [before[0], lim.p.copy()], [before[1], lim.v.copy()], [before[2], lim.a.copy()]
        brake = np.full(lay.n, halted) | self.preview_brake
        for k in range(1, follow_points):
            target_p, target_v, target_a = shadow.p.copy(), np.zeros(lay.n), np.zeros(lay.n)
            target_p[rot] = shadow.p[rot] = 0.0
            if not brake.all():
                value, rate, rate2 = sample(k)
                if math.isfinite(value.sum() + rate.sum() + rate2.sum()):
                    self.targets(value, rate, rate2, target_p, target_v, target_a, shadow.p, None)
                    target_p[rot] = 0.0
                else:
                    brake[:] = True
            shadow.step(target_p, target_v, brake, target_a)
            ps.append(shadow.p.copy())
            vs.append(shadow.v.copy())
            as_.append(shadow.a.copy())
        shadow.p[rot] = 0.0
        stop_p, stop_v, stop_a = shadow.stop_path(self.period_s)
        out_p, out_v, out_a = np.vstack([*ps, stop_p]), np.vstack([*vs, stop_v]), np.vstack([*as_, stop_a])
        out_p[:, lay.velocity_axes] = 0.0
        out_p[:, rot] = 0.0
        out_v[-1], out_a[-1] = 0.0, 0.0  # at rest to the last digit: a stock controller refuses a moving end
        self.last = Horizon(tick_time, self.period_s, out_p, out_v, out_a)
        return self.last
