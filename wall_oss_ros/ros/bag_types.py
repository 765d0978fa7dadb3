"""The message definitions a bag is read with, free of rclpy so that the data tools run where ROS is not
installed (the dataset environment of `bag-to-lerobot`)."""

from __future__ import annotations

from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from wall_oss_ros.core.resources import share_dir


def typestore_with_own_messages():  # noqa: ANN201 - rosbags Typestore
    """The Kilted typestore plus this package's messages, from their .msg files."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for path in sorted((share_dir() / "msg").glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"wall_oss_ros/msg/{path.stem}"))
    store.register(types)
    return store
