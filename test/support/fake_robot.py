"""A stand-in robot: publishes joint states at 100 Hz (tracking what it is commanded) and records commands."""

from __future__ import annotations

import argparse
import json
import signal
import time

import rclpy
from builtin_interfaces.msg import Time
from rclpy.duration import Duration
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from test.support.robots import contract, rest_state
from test.support.tracking_robot import TrackingRobot
from wall_oss_ros.ros.shutdown import until_shutdown


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contract", default="aloha_bimanual")
    parser.add_argument("--duration-s", type=float, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--camera", action="store_true", help="also publish the contract's cameras at 30 Hz")
    parser.add_argument("--stamp-offset-s", type=float, default=0.0,
                        help="stamp frames and joint states this far from the clock (a host whose clock is off)")
    parser.add_argument("--camera-silent", action="store_true", help="cameras start silent (SIGUSR1 toggles them)")
    parser.add_argument("--states-with-camera", action="store_true",
                        help="publish joint states only while the cameras are on (to count their delivery too)")
    parser.add_argument("--clock-hz", type=float, default=0.0,
                        help="also publish /clock (wall time) at this rate, like a simulator or a bag replay")
    args = parser.parse_args()
    c = contract(args.contract)
    robot = TrackingRobot(rest_state(c).joints)
    rclpy.init()
    node = rclpy.create_node("fake_robot")
    pub = node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
    records: list[dict] = []
    frames = states = 0
    camera_on = args.camera and not args.camera_silent

    def on_command(group: str, msg: JointTrajectory) -> None:
        point = msg.points[0]  # recorded: the command state at the stamp (horizon mode), where the path starts
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        now = time.time()
        robot.command(msg, now)
        records.append({"t": now, "group": group, "positions": list(point.positions),
                        "velocities": list(point.velocities), "points": len(msg.points),
                        "stamp": stamp, "all_velocities": [list(p.velocities) for p in msg.points],
                        "times": [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points],
                        "all_positions": [list(p.positions) for p in msg.points],
                        "last_velocities": list(msg.points[-1].velocities)})

    # A deep queue: a recorder starved of CPU for a while must not lose commands, or the smoothness checks
    # would see the gap as a velocity jump.
    for g in c.groups:
        node.create_subscription(JointTrajectory, g.output.topic, lambda m, name=g.name: on_command(name, m), 200)

    offset = Duration(nanoseconds=round(args.stamp_offset_s * 1e9))

    def stamped() -> Time:
        return (node.get_clock().now() + offset).to_msg()

    def publish_state() -> None:
        nonlocal states
        if args.states_with_camera and not (camera_on and pub.get_subscription_count() > 0):
            return
        states += 1
        msg = JointState()
        msg.header.stamp = stamped()
        joints = robot.positions(time.time())
        msg.name, msg.position = list(joints), list(joints.values())
        pub.publish(msg)

    node.create_timer(0.01, publish_state)
    if args.clock_hz > 0:
        from rosgraph_msgs.msg import Clock

        clock_pub = node.create_publisher(Clock, "/clock", 10)
        node.create_timer(1 / args.clock_hz, lambda: clock_pub.publish(Clock(clock=node.get_clock().now().to_msg())))
    if args.camera:
        import numpy as np
        from sensor_msgs.msg import Image

        pixels = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8).tobytes()
        cameras = [node.create_publisher(Image, cam.topic, qos_profile_sensor_data) for cam in c.cameras]

        # SIGUSR1 toggles the cameras: a camera driver that hangs, or starts, when the test wants it.
        def toggle_camera(*_: object) -> None:
            nonlocal camera_on
            camera_on = not camera_on

        signal.signal(signal.SIGUSR1, toggle_camera)

        def publish_frames() -> None:
            nonlocal frames
            if not camera_on:
                return
            if any(p.get_subscription_count() == 0 for p in cameras):
                return  # discovery has not matched a reader yet: a frame now would count as lost
            frames += 1
            stamp = stamped()
            for pub_cam in cameras:
                frame = Image(height=480, width=640, encoding="rgb8", step=640 * 3, data=pixels)
                frame.header.stamp = stamp
                pub_cam.publish(frame)

        node.create_timer(1 / 30, publish_frames)
    print(json.dumps({"ready": True}), flush=True)
    end = time.monotonic() + args.duration_s
    with until_shutdown():  # stopped early: still hand over what was recorded
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.01)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second stop request must not cut the recording short
    with open(args.out, "w") as f:
        json.dump(records, f)
    print(json.dumps({"records": len(records), "frames": frames, "states": states}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
