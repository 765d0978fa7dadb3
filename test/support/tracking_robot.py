"""Joint positions of a robot that tracks its trajectory controllers perfectly.

Each controller is core/trajectory_following.py's model of the stock JointTrajectoryController (accepting
moving last points, so that both executor modes reach it): a horizon path is run on along its stamps
between messages, as a real controller does, instead of standing at the last message's first point.
"""

from __future__ import annotations

from collections.abc import Mapping

from trajectory_msgs.msg import JointTrajectory

from wall_oss_ros.core.trajectory_following import JtcSettings, TrajectoryFollower, TrajectoryRejectedError
from wall_oss_ros.ros.conversions import stamp_to_sec

ACCEPT_BOTH_MODES = JtcSettings(allow_nonzero_velocity_at_trajectory_end=True)


class TrackingRobot:
    def __init__(self, joints: Mapping[str, float]) -> None:
        self.joints = dict(joints)
        self._followers: dict[tuple[str, ...], TrajectoryFollower] = {}

    def command(self, msg: JointTrajectory, now_s: float) -> None:
        names = tuple(msg.joint_names)
        follower = self._followers.get(names)
        if follower is None:
            follower = self._followers[names] = TrajectoryFollower(
                names, [self.joints.get(n, 0.0) for n in names], ACCEPT_BOTH_MODES)
        try:
            follower.accept(names, stamp_to_sec(msg.header.stamp),
                            [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points],
                            [list(p.positions) for p in msg.points],
                            [list(p.velocities) for p in msg.points] if all(p.velocities for p in msg.points)
                            else None, now_s)
        except TrajectoryRejectedError:
            return  # what a controller would do: keep the running trajectory

    def positions(self, now_s: float) -> dict[str, float]:
        """Every joint where its controller has it now (joints no controller owns stay where they were)."""
        for names, follower in self._followers.items():
            self.joints.update(zip(names, follower.sample(now_s)[0].tolist(), strict=True))
        return dict(self.joints)
