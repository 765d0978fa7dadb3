"""The checks on the fastest stop from each new command, and the refusal of a step that fails them.

After the limiter's step, the stop from the new state (sampled once per tick to rest) is judged by the
self-collision guard (every point of it, core/safety/collision_guard.py), by each arm's singularity rule (at
its end) and by each arm's tip speed (at the state and every tick of it, core/ik_stage.py). A refused step is
replaced, for the axes concerned, by the fastest stop from the last command: the stop those checks passed
the tick before, as the position bounds are kept (core/safety/motion.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from wall_oss_ros.core.ik_stage import IkStage
from wall_oss_ros.core.safety.collision_guard import CollisionGuard, GuardVerdict
from wall_oss_ros.core.safety.motion import MotionLimiter
from wall_oss_ros.core.safety.status import Intervention

State = tuple[np.ndarray, np.ndarray, np.ndarray]  # positions, velocities, accelerations of every axis


def collision_fault(verdict: GuardVerdict) -> str:
    return (f"self-collision: {verdict.clearance.links[0]} and {verdict.clearance.links[1]} "
            f"would come {verdict.clearance.distance_m * 1e3:.1f} mm apart")


class StopChecks:
    """The IK stage's and the collision guard's checks of a new command's stop (either may be absent)."""

    def __init__(self, ik: IkStage | None, guard: CollisionGuard | None, period_s: float) -> None:
        self.ik, self.guard, self.period_s = ik, guard, period_s

    def refuse(self, lim: MotionLimiter, previous: State, target_p: np.ndarray, target_v: np.ndarray,
               target_a: np.ndarray, brake: np.ndarray,
               note: Callable[[Intervention], None]) -> tuple[np.ndarray, str | None]:
        """Judge the limiter's new state; where refused, step again from `previous` with those axes braked.
        Returns (the refused axes, a fault text for a collision halt or None)."""
        guard, ik, dt = self.guard, self.ik, self.period_s
        path_p, path_v, _ = lim.braking().per_tick(dt)  # one per tick, to rest
        refused = np.zeros(lim.n, dtype=bool)
        fault = None
        verdict = guard.check(lim, path_p) if guard is not None else None
        if verdict is not None and not verdict.accepted:
            refused |= guard.mask
            note(Intervention.COLLISION_HALT)
            fault = collision_fault(verdict)
        if ik is not None:
            singular = ik.singular_stops(lim.p, path_p)
            if singular.any():
                refused |= singular
                note(Intervention.SINGULARITY_HALT)
            fast = ik.fast_stops(lim.p, lim.v, path_p, path_v)
            if fast.any():
                refused |= fast
                note(Intervention.DYNAMICS_LIMIT)
        for _ in range(2):
            if not refused.any():
                break
            lim.p, lim.v, lim.a = (x.copy() for x in previous)
            lim.step(target_p, target_v, brake | refused, target_a)
            if guard is None:
                break
            verdict = guard.check(lim)
            if verdict.accepted or refused[guard.mask].all():
                break
            # One arm braked, the other axes moved on: a state the check above never saw, and not clear.
            refused |= guard.mask
            note(Intervention.COLLISION_HALT)
            fault = collision_fault(verdict)
        if guard is not None:
            guard.accept(verdict)
        return refused, fault
