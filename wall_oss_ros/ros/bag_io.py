"""What reading and writing rosbag2 files with `rosbags` needs from ROS: message classes, QoS.

`rosbag2_py` is not installable from pip; `rosbags` reads and writes the same files (sqlite3, mcap).
Messages cross unchanged as serialised CDR (rclpy's raw subscriptions and publish(bytes)).
"""

from __future__ import annotations

import importlib

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

_INFINITE = QosTime(sec=0x7FFFFFFF, nsec=0xFFFFFFFF)  # rosbag2's "infinite" duration
_RELIABILITY = {ReliabilityPolicy.RELIABLE: QosReliability.RELIABLE,
                ReliabilityPolicy.BEST_EFFORT: QosReliability.BEST_EFFORT}
_DURABILITY = {DurabilityPolicy.TRANSIENT_LOCAL: QosDurability.TRANSIENT_LOCAL,
               DurabilityPolicy.VOLATILE: QosDurability.VOLATILE}


def message_class(type_name: str) -> type:
    """`pkg/msg/Type` → the rclpy message class."""
    try:
        package, kind, name = type_name.split("/")
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ValueError, ImportError, AttributeError) as exc:
        raise ValueError(f"message type {type_name!r} is not available here ({exc})") from exc


def bag_qos(profile: QoSProfile) -> Qos:
    """An rclpy QoS profile as rosbag2's offered_qos_profiles entry (so `ros2 bag play` re-offers it)."""
    return Qos(history=QosHistory.KEEP_LAST if profile.history != HistoryPolicy.KEEP_ALL else QosHistory.KEEP_ALL,
               depth=int(profile.depth), reliability=_RELIABILITY.get(profile.reliability, QosReliability.RELIABLE),
               durability=_DURABILITY.get(profile.durability, QosDurability.VOLATILE), deadline=_INFINITE,
               lifespan=_INFINITE, liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=_INFINITE,
               avoid_ros_namespace_conventions=False)


# A reliable writer overwrites samples a lagging reader has not acknowledged once its history is full; a
# replay runs at or above the recorded rate into nodes that may be busy, so it keeps a second of 100 Hz data.
REPLAY_RELIABLE_DEPTH = 100


def ros_qos(offered: list[Qos] | tuple[Qos, ...]) -> QoSProfile:
    """The QoS to re-publish a recorded topic with: what its publishers offered (reliable when unknown), with
    reliable topics at least REPLAY_RELIABLE_DEPTH deep (depth does not affect QoS matching)."""
    if not offered:
        return QoSProfile(depth=REPLAY_RELIABLE_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
    q = offered[0]
    reliable = q.reliability != QosReliability.BEST_EFFORT
    depth = max(1, int(q.depth) or 10)
    return QoSProfile(
        depth=max(depth, REPLAY_RELIABLE_DEPTH) if reliable else depth,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=(DurabilityPolicy.TRANSIENT_LOCAL if q.durability == QosDurability.TRANSIENT_LOCAL
                    else DurabilityPolicy.VOLATILE))
