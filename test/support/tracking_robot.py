"""Joint positions of a robot that tracks its trajectory controllers perfectly.

A horizon path (stamped) is run on along its stamps between messages, as a JointTrajectoryController does,
instead of standing at the last message's first point; an unstamped one starts on receipt. Linear between
points: cheap enough for a helper process on a loaded machine (the stock rules themselves are sim_node's,
core/trajectory_following.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from trajectory_msgs.msg import JointTrajectory

from wall_oss_ros.ros.conversions import stamp_to_sec


class TrackingRobot:
    def __init__(self, joints: Mapping[str, float]) -> None:
        self.joints = dict(joints)
        self._paths: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}  # names → (times [s], positions)

    def command(self, msg: JointTrajectory, now_s: float) -> None:
        if not msg.points:
            return
        start = stamp_to_sec(msg.header.stamp) or now_s
        times = start + np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
        self._paths[tuple(msg.joint_names)] = (times, np.array([list(p.positions) for p in msg.points]))

    def positions(self, now_s: float) -> dict[str, float]:
        """Every joint where its controller has it now (joints no controller owns stay where they were)."""
        for names, (times, positions) in self._paths.items():
            self.joints.update(zip(names, (float(np.interp(now_s, times, positions[:, j]))
                                           for j in range(len(names))), strict=True))
        return dict(self.joints)
