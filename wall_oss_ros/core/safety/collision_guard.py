"""Self-collision guard of the executor's command: slow down near a collision, never step into one.

MoveIt Servo's rule, with a stop that is certain: below the proximity threshold the joint targets of the
checked axes are shortened in proportion to the distance left above the stop distance, while moving
closer; and a step is accepted only if neither the new command nor the end of the fastest stop from it
comes closer than the stop distance, unless it moves away (distance not falling). A refused step is
replaced by the fastest stop from the last accepted command, whose path was checked the tick before (at
STOP_SAMPLES points along it, the last where it comes to rest).
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
STOP_SAMPLES = 2  # points checked along the fastest stop from a new command (half-way, and at rest)
# Steps are judged against the stop distance plus this: between the checked points of a stop, and on the part
# of a checked stop a refused step brakes along, the distance may dip a little below the checked values.
BETWEEN_SAMPLES_M = 0.002


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
                                   exact_within_m=spec.proximity_threshold_m,
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

    def check(self, limiter: MotionLimiter, stop_points: np.ndarray | None = None) -> GuardVerdict:
        """Judge the limiter's new state: its command and its fastest stop (stop_points, if known)."""
        found = self.clearance(limiter.p)
        if not limiter.stopped(self.mask):
            points = limiter.stop_points(STOP_SAMPLES) if stop_points is None else stop_points
            for point in points:
                on_stop = self.clearance(point)
                found = on_stop if on_stop.distance_m < found.distance_m else found
        approaching = found.distance_m < self.distance_m - APPROACH_EPS_M
        accepted = found.distance_m >= self.spec.stop_distance_m + BETWEEN_SAMPLES_M or not approaching
        return GuardVerdict(accepted, found, approaching)

    def accept(self, verdict: GuardVerdict) -> None:
        self.trend_m = verdict.clearance.distance_m - self.distance_m
        self.distance_m = verdict.clearance.distance_m
