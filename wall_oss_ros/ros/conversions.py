"""Conversions between ROS messages and the core / policy value types. No control math here."""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point, PoseStamped, Twist, TwistStamped
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from visualization_msgs.msg import Marker, MarkerArray

from wall_oss_ros.core.chunk import Chunk
from wall_oss_ros.core.contract import GroupKind, OutputKind
from wall_oss_ros.core.executor_types import ExecutorSnapshot, GroupCommand
from wall_oss_ros.core.horizon import Horizon
from wall_oss_ros.msg import ActionChunk, ExecutorStatus
from wall_oss_ros.policy.backend import ChunkResult
from wall_oss_ros.ros.image_codec import SUPPORTED_ENCODINGS, ConversionError, decode_image

try:  # on a robot, ROS's own converter; absent from the pip environment
    from cv_bridge import CvBridge

    _BRIDGE: CvBridge | None = CvBridge()
except ImportError:
    _BRIDGE = None


def stamp_to_sec(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def sec_to_stamp(t: float) -> Time:
    if not math.isfinite(t) or t < 0:
        raise ConversionError(f"time {t} cannot be a ROS stamp")
    sec = math.floor(t)
    return Time(sec=sec, nanosec=min(round((t - sec) * 1e9), 999_999_999))


def sec_to_duration(t: float) -> Duration:
    sec = math.floor(t)
    return Duration(sec=sec, nanosec=min(round((t - sec) * 1e9), 999_999_999))


def image_to_rgb(msg: Image | CompressedImage) -> np.ndarray:
    """H×W×3 uint8 RGB from a raw or compressed image (ROS's cv_bridge for an rclpy Image where it is
    installed); unsupported encodings and corrupt data raise ConversionError."""
    if _BRIDGE is not None and isinstance(msg, Image) and msg.encoding in SUPPORTED_ENCODINGS:
        return _BRIDGE.imgmsg_to_cv2(msg, desired_encoding="rgb8")
    return decode_image(msg)


def joint_positions(msg: JointState) -> dict[str, float]:
    if len(msg.position) != len(msg.name):
        raise ConversionError(f"JointState has {len(msg.name)} names but {len(msg.position)} positions")
    return {name: float(p) for name, p in zip(msg.name, msg.position, strict=True)}


def pose_from_msg(msg: PoseStamped) -> tuple[tuple[float, float, float], tuple[float, float, float, float]]:
    """(xyz [m], quaternion x y z w) of a PoseStamped."""
    p, q = msg.pose.position, msg.pose.orientation
    return (p.x, p.y, p.z), (q.x, q.y, q.z, q.w)


def chunk_from_msg(msg: ActionChunk) -> Chunk:
    h, d = int(msg.horizon), int(msg.dim)
    if len(msg.action_names) != d or len(msg.values) != h * d:
        raise ConversionError(f"ActionChunk {msg.chunk_id}: {len(msg.action_names)} names and {len(msg.values)} "
                              f"values for horizon {h} x dim {d}")
    if len(msg.state) != len(msg.state_names):
        raise ConversionError(f"ActionChunk {msg.chunk_id}: {len(msg.state_names)} state names, "
                              f"{len(msg.state)} values")
    return Chunk(int(msg.chunk_id), stamp_to_sec(msg.header.stamp), float(msg.dt_s), tuple(msg.action_names),
                 np.asarray(msg.values, dtype=float).reshape(h, d), tuple(msg.state_names),
                 np.asarray(msg.state, dtype=float), int(msg.rtc_prefix_steps))


def chunk_to_msg(result: ChunkResult, chunk_id: int, t_obs: float, frame_id: str = "",
                 rtc_source_chunk_id: int = 0) -> ActionChunk:
    msg = ActionChunk()
    msg.header.stamp = sec_to_stamp(t_obs)
    msg.header.frame_id = frame_id
    msg.chunk_id = chunk_id
    msg.action_names = list(result.action_names)
    msg.dt_s = float(result.dt_s)
    msg.horizon, msg.dim = int(result.actions.shape[0]), int(result.actions.shape[1])
    msg.values = np.asarray(result.actions, dtype=float).reshape(-1).tolist()
    msg.state_names = list(result.state_names)
    msg.state = np.asarray(result.state, dtype=float).tolist()
    msg.inference_start = sec_to_stamp(result.inference_start_s)
    msg.inference_end = sec_to_stamp(result.inference_end_s)
    msg.denoising_steps = int(result.denoising_steps)
    msg.rtc_prefix_steps = int(result.rtc_prefix_steps)
    msg.rtc_source_chunk_id = int(rtc_source_chunk_id)
    msg.subtask = result.subtask
    return msg


def status_to_msg(snap: ExecutorSnapshot, frame_id: str = "") -> ExecutorStatus:
    msg = ExecutorStatus()
    msg.header.stamp = sec_to_stamp(max(snap.stamp, 0.0))
    msg.header.frame_id = frame_id
    msg.state = int(snap.state)
    msg.status_code = int(snap.status_code)
    msg.status_text = snap.status_text
    msg.has_active_chunk = snap.active_chunk_id is not None
    msg.active_chunk_id = int(snap.active_chunk_id or 0)
    msg.remaining_steps = int(snap.remaining_steps)
    msg.chunk_requested = bool(snap.chunk_requested)
    msg.speed_scale, msg.plan_rate, msg.plan_lag_s = float(snap.speed_scale), float(snap.plan_rate), \
        float(snap.plan_lag_s)
    msg.committed_names = list(snap.committed_names)
    msg.committed_dt_s = float(snap.committed_dt_s)
    msg.committed_start = sec_to_stamp(max(snap.committed_start, 0.0))
    msg.committed_steps = int(snap.committed_values.shape[0])
    msg.committed_values = np.asarray(snap.committed_values, dtype=float).reshape(-1).tolist()
    msg.intervention_kinds = list(snap.interventions)
    msg.intervention_counts = [int(v) for v in snap.interventions.values()]
    msg.last_fault = snap.last_fault
    return msg


def command_to_msg(cmd: GroupCommand, output: OutputKind, frame_id: str, stamp: Time,
                   point_time_s: float) -> JointTrajectory | Float64MultiArray | Twist | TwistStamped | PoseStamped:
    """One group's command as its controller's message (JTC stream mode: one point, executed now)."""
    if output is OutputKind.JTC:
        msg = JointTrajectory()
        msg.joint_names = list(cmd.names)  # header.stamp left zero: the controller starts it on receipt
        msg.points = [JointTrajectoryPoint(positions=cmd.positions.tolist(), velocities=cmd.velocities.tolist(),
                                           accelerations=cmd.accelerations.tolist(),
                                           time_from_start=sec_to_duration(point_time_s))]
        return msg
    if output is OutputKind.FORWARD_POSITION:
        return Float64MultiArray(data=cmd.positions.tolist())
    if output in (OutputKind.TWIST, OutputKind.TWIST_STAMPED):
        twist = Twist()
        values = dict(zip(cmd.names, cmd.velocities.tolist(), strict=True))
        twist.linear.x, twist.linear.y, twist.angular.z = values.get("vx", 0.0), values.get("vy", 0.0), \
            values.get("wz", 0.0)
        if output is OutputKind.TWIST:
            return twist
        stamped = TwistStamped(twist=twist)
        stamped.header.stamp, stamped.header.frame_id = stamp, frame_id
        return stamped
    if cmd.kind is not GroupKind.EE_POSE:
        raise ConversionError(f"{cmd.group}: a pose output needs an ee_pose group")
    pose = PoseStamped()
    pose.header.stamp, pose.header.frame_id = stamp, frame_id
    p, q = cmd.positions[:3].tolist(), cmd.positions[3:7].tolist()
    pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = p
    pose.pose.orientation.x, pose.pose.orientation.y, pose.pose.orientation.z, pose.pose.orientation.w = q
    return pose


def horizon_to_msg(names: tuple[str, ...], horizon: Horizon, axes: slice | np.ndarray) -> JointTrajectory:
    """JTC horizon mode: the group's axes of the tick's path, point k at header.stamp + k·period.

    What a stock Jazzy/Kilted controller accepts with its default configuration and follows exactly:
    header.stamp the tick's time, so that point 0 is already due on arrival and the controller samples the
    path at its own now (the delivery delay and the measured state at receipt change nothing; a late or
    duplicate message lands on the same path), and a last point at rest after a stop within the limits
    (a moving last point is refused unless allow_nonzero_velocity_at_trajectory_end). Each message replaces
    the running one; the controller runs on along it through late or missing ticks. Needs the controller's
    clock to be the executor's (same host, or synchronised; sim time in simulation): see core/horizon.py.
    """
    msg = JointTrajectory()
    msg.header.stamp = sec_to_stamp(horizon.start_s)
    msg.joint_names = list(names)
    msg.points = [JointTrajectoryPoint(positions=p.tolist(), velocities=v.tolist(), accelerations=a.tolist(),
                                       time_from_start=sec_to_duration(t))
                  for p, v, a, t in zip(horizon.positions[:, axes], horizon.velocities[:, axes],
                                        horizon.accelerations[:, axes], horizon.times_from_start_s, strict=True)]
    return msg


# Marker colours (RGBA) per drawn element: the committed path, and the commanded tip now.
PATH_RGBA, TIP_RGBA = (0.1, 0.8, 1.0, 0.9), (1.0, 0.5, 0.0, 1.0)


def tip_markers(paths: dict[str, np.ndarray], frame_id: str, stamp: Time) -> MarkerArray:
    """Per group a LINE_STRIP of its predicted tip path and a SPHERE at the commanded tip (ns = group)."""
    out = MarkerArray()
    for name, path in paths.items():
        for marker_id, (kind, rgba, points) in enumerate(((Marker.LINE_STRIP, PATH_RGBA, path),
                                                          (Marker.SPHERE, TIP_RGBA, path[:1]))):
            m = Marker(ns=name, id=marker_id, type=kind, action=Marker.ADD)
            m.header.frame_id, m.header.stamp = frame_id, stamp
            m.pose.orientation.w = 1.0
            m.scale.x = m.scale.y = m.scale.z = 0.005 if kind == Marker.LINE_STRIP else 0.02
            m.color.r, m.color.g, m.color.b, m.color.a = rgba
            if kind == Marker.SPHERE:
                m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(x) for x in points[0])
            else:
                m.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in points]
            out.markers.append(m)
    return out


OUTPUT_TYPES = {OutputKind.JTC: JointTrajectory, OutputKind.FORWARD_POSITION: Float64MultiArray,
                OutputKind.TWIST: Twist, OutputKind.TWIST_STAMPED: TwistStamped, OutputKind.POSE_STAMPED: PoseStamped}
