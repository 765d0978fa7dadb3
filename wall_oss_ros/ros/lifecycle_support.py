"""What every lifecycle node of the package shares: its clock in seconds, joint-state reading, running it."""

from __future__ import annotations

import sys
from collections.abc import Callable

from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from sensor_msgs.msg import JointState

from wall_oss_ros.ros.conversions import ConversionError, joint_positions

CLOCK_CHECK_PERIOD_S = 2.0  # wall seconds between checks for a /clock publisher under use_sim_time


class WallOssLifecycleNode(LifecycleNode):
    def watch_sim_clock(self) -> None:
        """With use_sim_time and nobody publishing /clock the node's time stands at zero and it silently does
        nothing: say so on the console (every CLOCK_CHECK_PERIOD_S of wall time) until a clock appears."""
        from rclpy.clock import Clock, ClockType

        if not self.get_parameter("use_sim_time").value:
            return

        def check() -> None:
            if self.count_publishers("/clock") > 0 and self.get_clock().now().nanoseconds > 0:
                timer.cancel()
                return
            self.get_logger().warning("use_sim_time is true but nothing publishes /clock: this node's time stands "
                                      "still (start the simulation or the bag replay, or set use_sim_time false)")

        timer = self.create_timer(CLOCK_CHECK_PERIOD_S, check, clock=Clock(clock_type=ClockType.STEADY_TIME))

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


def run(make_node: Callable[[], LifecycleNode], args: list[str] | None) -> int:
    """Spin a lifecycle node; with --activate (no lifecycle manager) configure and activate it first.

    Always a single-threaded executor: rclpy's MultiThreadedExecutor busy-polls while the callbacks of a
    mutually exclusive group wait (ros2/rclpy#1452); measured, it held a core at 100 % and the policy
    node lost a quarter of its joint states. Long work belongs in a node's own thread instead."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from wall_oss_ros.ros.shutdown import ignore_further_signals, until_shutdown

    argv = args if args is not None else sys.argv
    rclpy.init(args=argv)
    node = make_node()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        with until_shutdown():
            if "--activate" in argv:
                if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                    node.get_logger().fatal("configuration failed (see above): not starting")
                    return 1
                node.trigger_activate()
            executor.spin()
    finally:
        ignore_further_signals()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
