"""What every lifecycle node of the package shares: its clock in seconds, joint-state reading, running it."""

from __future__ import annotations

import sys
from collections.abc import Callable

from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from sensor_msgs.msg import JointState

from wall_oss_ros.ros.conversions import ConversionError, joint_positions


class WallOssLifecycleNode(LifecycleNode):
    def now(self) -> float:
        """Node clock (ROS or sim time) in seconds: the clock chunks and stamps are compared on."""
        return self.get_clock().now().nanoseconds * 1e-9

    def read_joint_state(self, msg: JointState) -> dict[str, float] | None:
        """Positions by name, or None (with a throttled error) for a malformed message."""
        try:
            return joint_positions(msg)
        except ConversionError as exc:
            self.get_logger().error(str(exc), throttle_duration_sec=1.0)
            return None


def run(make_node: Callable[[], LifecycleNode], args: list[str] | None, threads: int = 1) -> int:
    """Spin a lifecycle node; with --activate (no lifecycle manager) configure and activate it first."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor

    argv = args if args is not None else sys.argv
    rclpy.init(args=argv)
    node = make_node()
    executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if "--activate" in argv:
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().fatal("configuration failed (see above): not starting")
                return 1
            node.trigger_activate()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
