"""Self-collision guard of the executor's command: slow down near a collision, never step into one.

MoveIt Servo's rule, with a stop that is certain: below the proximity threshold the joint targets of the
checked axes are shortened in proportion to the distance left above the stop distance, while moving
closer; and a step is accepted only if neither the new command nor any point of the fastest stop from it
comes closer than the stop distance, unless it moves away (distance not falling). A refused step is
replaced by the fastest stop from the last accepted command, whose path was checked the tick before.

The stop's path is checked by conservative advancement: at a point of it whose distance is d, no later
point can come closer than the stop distance before the geometry has moved d minus that distance, and
SelfCollision.levers bound the motion from joint changes (Σ lever · |Δq|). So the points checked are dense
only where the path comes close, and what lies between them is covered, not sampled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wall_oss_ros.core.contract import SelfCollisionModel
from wall_oss_ros.core.resources import package_roots
from wall_oss_ros.core.safety.motion import MotionLimiter
from wall_oss_ros.core.self_collision import Clearance, SelfCollision

APPROACH_EPS_M = 1e-6  # a distance falling by less than this is not approaching
CHECK_MARGIN_M = 0.002  # steps are judged against the stop distance plus this (numerical slack of the bounds)


@dataclass(frozen=True)
class GuardVerdict:
    accepted: bool
    clearance: Clearance
    approaching: bool


class CollisionGuard:
    """axis_joints: the joint name of each limiter axis (None for axes that are not joints)."""

    def __init__(self, spec: SelfCollisionModel, axis_joints: Sequence[str | None]) -> None:
        self.spec = spec
        self.model = SelfCollision(spec.urdf, spec.pairs, [str(r) for r in package_roots()],
                                   moving_joints=[n for n in axis_joints if n is not None])
        known = [(i, name) for i, name in enumerate(axis_joints)
                 if name is not None and self.model.model.existJointName(name)]
        if not known:
            raise ValueError(f"{spec.urdf}: none of the contract's joints is in the collision model")
        self.axes = np.array([i for i, _ in known])
        self.mask = np.zeros(len(axis_joints), dtype=bool)
        self.mask[self.axes] = True
        self.q_index = self.model.joint_index([name for _, name in known])
        self.distance_m = np.inf  # of the last accepted command (and of its stop)
        self.trend_m = 0.0  # change of that distance over the last accepted step

    def clearance(self, positions: np.ndarray) -> Clearance:
        q = self.model.q.copy()
        q[self.q_index] = positions[self.axes]
        return self.model.clearance(q)

    def reset(self, positions: np.ndarray) -> Clearance:
        """A command at rest at these limiter positions (start): its distance is the reference."""
        found = self.clearance(positions)
        self.distance_m, self.trend_m = found.distance_m, 0.0
        return found

    def scale(self) -> float:
        """Share of the step toward the targets allowed for the checked axes (1 outside the proximity band)."""
        spec = self.spec
        if self.distance_m >= spec.proximity_threshold_m or self.trend_m >= 0.0:
            return 1.0
        return float(np.clip((self.distance_m - spec.stop_distance_m)
                             / (spec.proximity_threshold_m - spec.stop_distance_m), 0.0, 1.0))

    def check(self, limiter: MotionLimiter, stop_path: np.ndarray | None = None) -> GuardVerdict:
        """Judge the limiter's new state: its command and its fastest stop (stop_path: (K, n) positions, one
        per tick to rest, if known). Accepted if the whole path is certainly no closer than the stop distance
        (plus margin), or if it does not approach: no checked point closer than the last accepted distance."""
        found = self.clearance(limiter.p)
        target = self.spec.stop_distance_m + CHECK_MARGIN_M
        certain = found.distance_m
        if not limiter.stopped(self.mask):
            if stop_path is None:
                stop_path = limiter.braking().per_tick(limiter.period_s)[0]
            found, certain = self._along(limiter.p, stop_path, found, target)
        approaching = found.distance_m < self.distance_m - APPROACH_EPS_M
        accepted = certain >= target or not approaching
        return GuardVerdict(accepted, found, approaching)

    def _along(self, start: np.ndarray, path: np.ndarray, found: Clearance,
               target: float) -> tuple[Clearance, float]:
        """(smallest clearance checked, lower bound [m] of the clearance along the whole path) from start.

        A point is checked only where the distance of the last checked one, less the displacement bound since,
        could fall under target; between two checked points a, b the distance is at least
        (d_a + d_b - bound(a → b)) / 2. Stops early once a checked point both is under target and approaches."""
        q_start = self.model.q.copy()
        q_start[self.q_index] = start[self.axes]
        qs = np.tile(self.model.q, (len(path), 1))
        qs[:, self.q_index] = path[:, self.axes]
        travelled = np.cumsum(np.abs(np.diff(np.vstack([q_start, qs]), axis=0)) @ self.model.levers)
        certain = last_distance = found.distance_m
        last_travel = 0.0
        for k in range(len(path)):
            moved = travelled[k] - last_travel
            if last_distance - moved >= target:
                continue  # nothing up to here can have come under target
            here = self.model.clearance(qs[k])
            certain = min(certain, here.distance_m, 0.5 * (last_distance + here.distance_m - moved))
            last_distance, last_travel = here.distance_m, travelled[k]
            if here.distance_m < found.distance_m:
                found = here
                if here.distance_m < target and here.distance_m < self.distance_m - APPROACH_EPS_M:
                    break  # refused whatever the rest of the path holds
        return found, certain

    def accept(self, verdict: GuardVerdict) -> None:
        self.trend_m = verdict.clearance.distance_m - self.distance_m
        self.distance_m = verdict.clearance.distance_m
