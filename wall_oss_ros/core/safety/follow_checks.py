"""Whether the robot does what it is commanded: the measured state against the command, per group.

Two faults, both measured at the robot: a tracking error beyond a group's tolerance for longer than the grace
time, and an arm that stands while its command moves (its controller drops the commands).
"""

from __future__ import annotations

import math

import numpy as np

from wall_oss_ros.core.contract import GroupKind
from wall_oss_ros.core.executor_axes import AxisLayout
from wall_oss_ros.core.executor_types import MeasuredState
from wall_oss_ros.core.safety.watchdog import Watchdogs


class FollowChecks:
    def __init__(self, layout: AxisLayout, watchdogs: Watchdogs, control_hz: float) -> None:
        self.layout, self.watchdogs, self.control_hz = layout, watchdogs, control_hz
        self._followed = [ga for ga in layout.groups if ga.kind is GroupKind.JOINT_POSITION or ga.ik is not None]

    def tracking_fault(self, now: float, m: MeasuredState, commanded: np.ndarray) -> str:
        """The first group whose tracking error outlasted the grace time, said in one line ('' if none)."""
        joints, command = m.joints, commanded.tolist()
        for ga in self.layout.tracked_groups:
            g = ga.group
            if ga.kind is GroupKind.EE_POSE and ga.ik is None:
                pose = m.poses.get(g.name)
                if pose is None:
                    error = math.inf
                else:
                    (x, y, z), (cx, cy, cz) = list(pose[0]), command[ga.pos]
                    error = math.sqrt((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2)
            else:
                error = max(abs(joints.get(j, math.inf) - c)
                            for j, c in zip(ga.joint_names, command[ga.axes], strict=True))
            error = error if error == error else math.inf  # NaN or missing measurement: unbounded error
            if self.watchdogs.tracking(now, g.name, error, g.tracking_tolerance):
                return (f"{g.name}: measured state is {error:.3f} {g.unit} from the command "
                        f"(tolerance {g.tracking_tolerance}) for {self.watchdogs.config.tracking_grace_s} s")
        return ""

    def not_following(self, now: float, m: MeasuredState, commanded: np.ndarray) -> str:
        """An arm whose measured joints all stand while its command moves, said in one line ('' if none).
        Grippers are left out: one closing on an object stalls by design."""
        if self.watchdogs.config.follow_window_s <= 0 or now - m.stamp > 2.0 / self.control_hz:
            return ""  # off, or a late measurement that cannot show progress yet
        for ga in self._followed:
            g = ga.group
            measured = np.array([m.joints.get(j, math.nan) for j in ga.joint_names])
            problem = self.watchdogs.following(now, g.name, commanded[ga.axes], measured)
            if problem:
                return (f"{g.name}: the controller on {g.output.topic} does not follow ({problem}). A stock "
                        "JointTrajectoryController drops a trajectory whose last point moves unless "
                        "allow_nonzero_velocity_at_trajectory_end is true (jtc_mode stream), and one for "
                        "joints it does not own; see its log")
        return ""
