"""sim_node: a robot in MuJoCo (gym-aloha's bimanual ViperX, or TIAGo++), driven like real ros2_control
hardware, owning /clock.

Sim time advances with the physics (one `step_s` per loop), so a simulation slower than real time keeps
every node (use_sim_time) consistent. Per step it publishes /clock; at `joint_state_hz` the joints (ALOHA's
grippers normalised 0 closed … 1 open); at `camera_hz` every camera (Image, and CompressedImage JPEG on
`<topic>/compressed` when enabled). Commands arrive the way a real robot takes them: per controller a
JointTrajectoryController topic (`/<controller>/joint_trajectory`, with the stock controller's acceptance
and replacement rules: core/trajectory_following.py) or a forward command controller (`/<controller>/commands`,
Float64MultiArray); a mobile base a TwistStamped on its base controller's `cmd_vel` (stopped when no command
came for `cmd_vel_timeout_s`, as diff_drive_controller does), its odometry on `…/odom`. Malformed commands
are refused with an error; the robot keeps its last valid target. `~/model_path` (latched String) names the
robot description for FK and visualisation. Controllers and topics per robot: sim/robots.py.
"""

from __future__ import annotations

import sys
import time

import cv2
import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64, Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory

from wall_oss_ros.core.trajectory_following import JtcSettings, TrajectoryFollower
from wall_oss_ros.ros.conversions import sec_to_stamp, stamp_to_sec
from wall_oss_ros.ros.parameters import Param, declare
from wall_oss_ros.ros.shutdown import until_shutdown
from wall_oss_ros.sim.robots import ROBOTS, make_robot

PARAMS = (
    Param("robot", "aloha", f"the simulated robot: {' | '.join(ROBOTS)}"),
    Param("task", "AlohaInsertion-v0", "ALOHA's task: AlohaInsertion-v0 | AlohaTransferCube-v0"),
    Param("seed", 0, "object placement seed"),
    Param("step_s", 0.002, "physics time per loop and /clock period [s]: a multiple of the 2 ms physics timestep"),
    Param("real_time_factor", 1.0, "pace sim time to this multiple of wall time when faster; 0: as fast as possible"),
    Param("duration_s", 0.0, "stop after this much sim time [s]; 0: run until shut down"),
    Param("wait_for_camera_subscriber", False, "hold sim time at 0 until camera_reader_node subscribes to the "
                                               "camera topic (a policy that has finished loading)"),
    Param("camera_reader_node", "policy_node", "the node wait_for_camera_subscriber waits for ('': any node; a "
                                               "recorder's subscription does not mean the policy is ready)"),
    Param("joint_state_hz", 100.0, "rate of /joint_states [Hz, sim time]"),
    Param("camera_hz", 30.0, "rate of the top camera [Hz, sim time]"),
    Param("camera_topic", "/camera/top/image_raw", "ALOHA's top camera Image topic (TIAGo++: sim/robots.py)"),
    Param("cmd_vel_timeout_s", 0.5, "a base without a command for this long stops [s, sim time]"),
    Param("camera_width", 640, "camera image width [px]"),
    Param("camera_height", 480, "camera image height [px]"),
    Param("publish_compressed", False, "also publish JPEG CompressedImage on <camera_topic>/compressed"),
    Param("render_shadows", True, "shadows and reflections (as gym-aloha renders; 3x slower on a CPU)"),
    Param("frame_id", "world", "frame of the camera and joint-state headers"),
    Param("allow_nonzero_velocity_at_trajectory_end", False, "JointTrajectoryController parameter (stock default "
          "false: a trajectory whose last point moves is refused)"),
    Param("interpolate_from_desired_state", False, "JointTrajectoryController parameter (stock default false: a "
          "new trajectory starts from the measured state)"),
)


class SimNode(Node):
    def __init__(self) -> None:
        super().__init__("sim_node")
        self.p = declare(self, PARAMS)
        for name in ("step_s", "joint_state_hz", "camera_hz", "camera_width", "camera_height"):
            if not float(self.p[name]) > 0:
                raise ValueError(f"parameter {name} must be positive, got {self.p[name]}")
        if float(self.p["real_time_factor"]) < 0 or float(self.p["duration_s"]) < 0:
            raise ValueError("real_time_factor and duration_s must not be negative")
        self.sim, self.faces = make_robot(str(self.p["robot"]), task=self.p["task"], seed=int(self.p["seed"]),
                                          width=int(self.p["camera_width"]), height=int(self.p["camera_height"]),
                                          shadows=bool(self.p["render_shadows"]), camera_topic=self.p["camera_topic"])
        substeps = float(self.p["step_s"]) / self.sim.timestep_s
        if substeps < 1 or abs(substeps - round(substeps)) > 1e-6:
            raise ValueError(f"step_s {self.p['step_s']} is not a multiple of the physics timestep "
                             f"{self.sim.timestep_s} s")
        self.callbacks = 0  # commands handled (the loop spins until no more arrive)
        start = self.sim.joint_positions()
        index = {n: i for i, n in enumerate(self.sim.joint_names)}
        settings = JtcSettings(bool(self.p["allow_nonzero_velocity_at_trajectory_end"]),
                               bool(self.p["interpolate_from_desired_state"]))
        controllers = self.faces.controllers
        self.followers = {name: (TrajectoryFollower(joints, start[[index[j] for j in joints]], settings),
                                 np.array([index[j] for j in joints])) for name, joints in controllers.items()}
        self.commands_received = dict.fromkeys(controllers, 0)
        self.commands_refused = dict.fromkeys(controllers, 0)
        for name in controllers:
            self.create_subscription(JointTrajectory, f"/{name}/joint_trajectory",
                                     lambda m, n=name: self._on_trajectory(n, m), 10)
            self.create_subscription(Float64MultiArray, f"/{name}/commands", lambda m, n=name: self._on_forward(n, m),
                                     10)
        self.clock_pub = self.create_publisher(Clock, "/clock", 10)
        self.joint_pub = self.create_publisher(JointState, "/joint_states", 10)
        self.image_pubs = {camera: self.create_publisher(Image, topic, qos_profile_sensor_data)
                           for camera, topic in self.faces.cameras.items()}
        self.jpeg_pubs = {camera: self.create_publisher(CompressedImage, topic + "/compressed", qos_profile_sensor_data)
                          for camera, topic in self.faces.cameras.items() if self.p["publish_compressed"]}
        self.camera_topic = next(iter(self.faces.cameras.values()))  # the one a reader's subscription is awaited on
        self.reward_pub = self.create_publisher(Float64, "~/reward", 10) if hasattr(self.sim, "reward") else None
        self._base_command_time = -np.inf
        if self.faces.base_topic:
            self.create_subscription(TwistStamped, self.faces.base_topic, self._on_base, 10)
            self.odom_pub = self.create_publisher(Odometry, self.faces.base_topic.rsplit("/", 1)[0] + "/odom", 10)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_publisher(String, "~/model_path", latched).publish(String(data=str(self.sim.model_path)))
        what = f"{self.p['task']} (seed {self.p['seed']})" if self.p["robot"] == "aloha" else self.p["robot"]
        self.get_logger().info(f"{what}, model {self.sim.model_path}")

    # ---------------------------------------------------------------- commands
    def camera_read(self) -> bool:
        """Whether the camera reader the start waits for has subscribed (any subscriber if none is named)."""
        reader = str(self.p["camera_reader_node"])
        topics = [self.camera_topic] + ([self.camera_topic + "/compressed"] if self.jpeg_pubs else [])
        infos = [info for topic in topics for info in self.get_subscriptions_info_by_topic(topic)]
        return bool(infos) if not reader else any(info.node_name == reader for info in infos)

    def _on_trajectory(self, controller: str, msg: JointTrajectory) -> None:
        follower, index = self.followers[controller]
        self.commands_received[controller] += 1
        self.callbacks += 1
        velocities = [list(p.velocities) for p in msg.points]
        try:
            follower.accept(list(msg.joint_names), stamp_to_sec(msg.header.stamp),
                            [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points],
                            [list(p.positions) for p in msg.points],
                            velocities if all(len(v) == len(msg.joint_names) for v in velocities) else None,
                            self.sim.time_s, (self.sim.joint_positions()[index], self.sim.joint_velocities()[index]))
        except ValueError as exc:  # the stock controller logs an error and drops the message
            self.commands_refused[controller] += 1
            self.get_logger().error(f"{controller}: trajectory refused: {exc}", throttle_duration_sec=1.0)

    def _on_base(self, msg: TwistStamped) -> None:
        """A base command (vx, wz; a diff drive ignores vy): refused unless finite."""
        self.callbacks += 1
        twist = (msg.twist.linear.x, msg.twist.angular.z)
        if not all(np.isfinite(twist)):
            self.get_logger().error(f"base command refused: not finite {twist}", throttle_duration_sec=1.0)
            return
        self.sim.base_twist[:] = twist
        self._base_command_time = self.sim.time_s

    def _on_forward(self, controller: str, msg: Float64MultiArray) -> None:
        follower, _ = self.followers[controller]
        self.commands_received[controller] += 1
        self.callbacks += 1
        try:
            follower.hold(list(msg.data))
        except ValueError as exc:
            self.commands_refused[controller] += 1
            self.get_logger().error(f"{controller}: command refused: {exc}", throttle_duration_sec=1.0)

    # ---------------------------------------------------------------- simulation
    def targets(self, t: float) -> np.ndarray:
        if self.faces.base_topic and t - self._base_command_time > float(self.p["cmd_vel_timeout_s"]):
            self.sim.base_twist[:] = 0.0
        out = np.zeros(len(self.sim.joint_names))
        for follower, index in self.followers.values():
            out[index] = follower.sample(t)[0]
        return out

    def publish_joint_states(self) -> None:
        msg = JointState(name=list(self.sim.joint_names), position=self.sim.joint_positions().tolist(),
                         velocity=self.sim.joint_velocities().tolist())
        msg.header.stamp, msg.header.frame_id = sec_to_stamp(self.sim.time_s), self.p["frame_id"]
        self.joint_pub.publish(msg)
        if self.faces.base_topic:
            self.publish_odometry(msg.header.stamp)

    def publish_odometry(self, stamp) -> None:  # noqa: ANN001 - builtin_interfaces/Time
        x, y, yaw = self.sim.base_pose()
        vx, wz = self.sim.base_velocity()
        odom = Odometry(child_frame_id="base_footprint")
        odom.header.stamp, odom.header.frame_id = stamp, "odom"
        odom.pose.pose.position.x, odom.pose.pose.position.y = float(x), float(y)
        odom.pose.pose.orientation.z, odom.pose.pose.orientation.w = float(np.sin(yaw / 2)), float(np.cos(yaw / 2))
        odom.twist.twist.linear.x, odom.twist.twist.angular.z = float(vx), float(wz)
        self.odom_pub.publish(odom)

    def publish_camera(self) -> None:
        stamp = sec_to_stamp(self.sim.time_s)
        for camera, publisher in self.image_pubs.items():
            rgb = self.sim.render(camera)
            h, w, _ = rgb.shape
            image = Image(height=h, width=w, encoding="rgb8", step=w * 3, data=rgb.tobytes())
            image.header.stamp, image.header.frame_id = stamp, f"{camera}_camera"
            publisher.publish(image)
            if camera in self.jpeg_pubs:
                ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
                if ok:
                    msg = CompressedImage(format="rgb8; jpeg compressed bgr8", data=jpeg.tobytes())
                    msg.header = image.header
                    self.jpeg_pubs[camera].publish(msg)
        if self.reward_pub is not None:
            self.reward_pub.publish(Float64(data=self.sim.reward))


def run_sim(node: SimNode, executor: SingleThreadedExecutor) -> None:
    p = node.p
    step = float(p["step_s"])
    rtf, duration = float(p["real_time_factor"]), float(p["duration_s"])
    joint_period, camera_period = 1.0 / float(p["joint_state_hz"]), 1.0 / float(p["camera_hz"])
    next_joint = next_camera = 0.0
    node.clock_pub.publish(Clock(clock=sec_to_stamp(node.sim.time_s)))
    if p["wait_for_camera_subscriber"]:
        reader = p["camera_reader_node"] or "a node"
        node.get_logger().info(f"sim time held at 0 until {reader} subscribes to {node.camera_topic}")
        while rclpy.ok() and not node.camera_read():
            executor.spin_once(timeout_sec=0.1)
            node.clock_pub.publish(Clock(clock=sec_to_stamp(node.sim.time_s)))
            node.publish_joint_states()
    wall_start = time.monotonic()
    while rclpy.ok() and (duration <= 0 or node.sim.time_s < duration):
        for _ in range(50):  # take the commands that arrived (a bounded number per step)
            before = node.callbacks
            executor.spin_once(timeout_sec=0.0)
            if node.callbacks == before:
                break
        t = node.sim.time_s
        if t >= next_joint - 1e-9:
            node.publish_joint_states()
            next_joint += joint_period
        if t >= next_camera - 1e-9:
            node.publish_camera()
            next_camera += camera_period
        node.sim.step(node.targets(t + step), step)
        node.clock_pub.publish(Clock(clock=sec_to_stamp(node.sim.time_s)))
        if rtf > 0:
            ahead = node.sim.time_s / rtf - (time.monotonic() - wall_start)
            if ahead > 0:
                time.sleep(ahead)
            else:  # behind (a render took long): never catch up in a burst, which nodes would see as a jump
                wall_start = time.monotonic() - node.sim.time_s / rtf


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args if args is not None else sys.argv)
    try:
        node = SimNode()
    except ValueError as exc:  # an invalid parameter: say which, start nothing
        rclpy.logging.get_logger("sim_node").fatal(f"cannot start: {exc}")
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        with until_shutdown():
            run_sim(node, executor)
            node.get_logger().info(f"sim time {node.sim.time_s:.2f} s reached: stopping")
    finally:
        node.sim.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
