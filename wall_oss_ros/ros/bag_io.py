"""What reading and writing rosbag2 files with `rosbags` needs from ROS: message classes, QoS, type defs.

`rosbag2_py` is not installable from pip; `rosbags` reads and writes the same files (sqlite3, mcap).
Messages cross unchanged as serialised CDR (rclpy's raw subscriptions and publish(bytes)).
"""

from __future__ import annotations

import importlib

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from wall_oss_ros.core.resources import share_dir

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


def typestore_with_own_messages():  # noqa: ANN201 - rosbags Typestore
    """The Kilted typestore plus this package's messages, from their .msg files."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for path in sorted((share_dir() / "msg").glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"wall_oss_ros/msg/{path.stem}"))
    store.register(types)
    return store


def bag_qos(profile: QoSProfile) -> Qos:
    """An rclpy QoS profile as rosbag2's offered_qos_profiles entry (so `ros2 bag play` re-offers it)."""
    return Qos(history=QosHistory.KEEP_LAST if profile.history != HistoryPolicy.KEEP_ALL else QosHistory.KEEP_ALL,
               depth=int(profile.depth), reliability=_RELIABILITY.get(profile.reliability, QosReliability.RELIABLE),
               durability=_DURABILITY.get(profile.durability, QosDurability.VOLATILE), deadline=_INFINITE,
               lifespan=_INFINITE, liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=_INFINITE,
               avoid_ros_namespace_conventions=False)


def ros_qos(offered: list[Qos] | tuple[Qos, ...]) -> QoSProfile:
    """The QoS to re-publish a recorded topic with: what its publishers offered (reliable when unknown)."""
    if not offered:
        return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    q = offered[0]
    return QoSProfile(
        depth=max(1, int(q.depth) or 10),
        reliability=(ReliabilityPolicy.BEST_EFFORT if q.reliability == QosReliability.BEST_EFFORT
                     else ReliabilityPolicy.RELIABLE),
        durability=(DurabilityPolicy.TRANSIENT_LOCAL if q.durability == QosDurability.TRANSIENT_LOCAL
                    else DurabilityPolicy.VOLATILE))
