"""Write rosbag2 files (mcap or sqlite3, with rosbags' writer) or a bare .mcap (mcap-ros2-support's encoder and
writer, as another tool records) of a synthetic ALOHA recording with known motion."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import Writer

from test.support.robots import contract, rest_state
from wall_oss_ros.ros.bag_types import typestore_with_own_messages
from wall_oss_ros.tools.bag_record import STORAGE

STORE = typestore_with_own_messages()
_T = STORE.types


def _time(t: float):
    sec = math.floor(t)
    return _T["builtin_interfaces/msg/Time"](sec=sec, nanosec=min(round((t - sec) * 1e9), 999_999_999))


def _header(t: float):
    return _T["std_msgs/msg/Header"](stamp=_time(t), frame_id="")


def joint_state(t: float, names: list[str], positions: np.ndarray):
    empty = np.zeros(0)
    return _T["sensor_msgs/msg/JointState"](header=_header(t), name=names, position=np.asarray(positions, float),
                                            velocity=empty, effort=empty)


def raw_image(t: float, pixels: np.ndarray, encoding: str = "rgb8"):
    h, w, _ = pixels.shape
    return _T["sensor_msgs/msg/Image"](header=_header(t), height=h, width=w, encoding=encoding, is_bigendian=0,
                                       step=w * 3, data=pixels.reshape(-1).copy())


def compressed_image(t: float, pixels: np.ndarray):
    png = np.frombuffer(cv2.imencode(".png", pixels[:, :, ::-1])[1].tobytes(), dtype=np.uint8)  # lossless
    return _T["sensor_msgs/msg/CompressedImage"](header=_header(t), format="png", data=png.copy())

WRITERS = ("mcap", "sqlite3", "mcap_ros2")  # rosbags' writer in both storages; mcap-ros2-support's bare .mcap
T0 = 100.0  # [s] recording start (bag and header time)
RECEIVE_DELAY_S = 0.004  # header stamp → receive time written to the bag
AMPLITUDE, FREQUENCY_HZ = 0.2, 0.5


def motion(t: float | np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Joint positions at time t: every joint swings around its rest value (grippers too, inside 0…1)."""
    return rest + AMPLITUDE * np.sin(2 * np.pi * FREQUENCY_HZ * np.asarray(t))[..., None] * np.ones_like(rest)


def write_test_bag(path: Path, storage: str = "mcap", duration_s: float = 2.0, camera_hz: float = 10.0,
                   joint_hz: float = 100.0, compressed: bool = False, commands: bool = False,
                   graph_outputs: bool = False, sensor_clock_offset_s: float = 0.0, zero_stamps: bool = False,
                   swap_joint_stamps_every: int = 0, nan_commands_every: int = 0, drop_joints: tuple[str, ...] = (),
                   instruction: str = "insert the peg", size: tuple[int, int] = (96, 128),
                   image_encoding: str = "rgb8", later_instructions: tuple[tuple[float, str], ...] = (),
                   camera_topics: tuple[str, ...] = (),
                   pixels: Callable[[int, float], np.ndarray] | None = None) -> dict:
    """camera_topics: the cameras recorded (default: the contract's one); pixels(camera index, t) → an H×W×3
    frame (default: uniform noise, which nothing can compress)."""
    c = contract("aloha_bimanual")
    rest_joints = dict(rest_state(c).joints)
    names = list(rest_joints)
    rest = np.array(list(rest_joints.values()))
    rng = np.random.default_rng(0)
    suffix = "/compressed" if compressed else ""
    cameras = [topic + suffix for topic in (camera_topics or (c.cameras[0].topic,))]
    events: list[tuple[float, str, object]] = [(T0, "/instruction", _T["std_msgs/msg/String"](data=instruction))]
    events += [(T0 + dt, "/instruction", _T["std_msgs/msg/String"](data=text)) for dt, text in later_instructions]

    def stamp(t: float) -> float:  # a sensor's header time: its own clock (offset), or none at all
        return 0.0 if zero_stamps else t + sensor_clock_offset_s

    kept = [i for i, n in enumerate(names) if n not in drop_joints]
    for k in range(int(duration_s * joint_hz)):
        t = T0 + k / joint_hz
        swapped = swap_joint_stamps_every and k % swap_joint_stamps_every == 1  # stamped before the previous one
        events.append((t + RECEIVE_DELAY_S, "/joint_states", joint_state(
            stamp(t - (1.5 / joint_hz if swapped else 0.0)), [names[i] for i in kept], motion(t - T0, rest)[kept])))
        if commands:
            for g in c.groups:
                target = motion(t - T0 + 0.01, rest)[[names.index(a) for a in g.axes]]
                if nan_commands_every and k % nan_commands_every == 0:
                    target = np.full(len(g.axes), np.nan)
                point = _T["trajectory_msgs/msg/JointTrajectoryPoint"](
                    positions=target, velocities=np.zeros(0), accelerations=np.zeros(0), effort=np.zeros(0),
                    time_from_start=_T["builtin_interfaces/msg/Duration"](sec=0, nanosec=10_000_000))
                cmd = _T["trajectory_msgs/msg/JointTrajectory"](header=_header(0.0), joint_names=list(g.axes),
                                                                points=[point])
                events.append((t + RECEIVE_DELAY_S, g.output.topic, cmd))
    if graph_outputs:  # what a whole run's bag holds besides the robot's side: the graph's own topics at 10 Hz
        for k in range(int(duration_s * 10)):
            t = T0 + k / 10 + RECEIVE_DELAY_S
            status = _T["diagnostic_msgs/msg/DiagnosticStatus"](level=0, name="wall_oss_ros: executor",
                                                                 message="ok", hardware_id="", values=[])
            events.append((t, "/diagnostics", _T["diagnostic_msgs/msg/DiagnosticArray"](header=_header(t),
                                                                                         status=[status])))
            events.append((t, "/estop", _T["std_msgs/msg/Bool"](data=False)))
    h, w = size
    for k in range(int(duration_s * camera_hz)):
        t = T0 + k / camera_hz + 0.001
        for i, topic in enumerate(cameras):
            image = pixels(i, t - T0) if pixels else rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            frame = compressed_image(stamp(t), image) if compressed else raw_image(stamp(t), image, image_encoding)
            events.append((t + RECEIVE_DELAY_S, topic, frame))
    events.sort(key=lambda e: e[0])
    types = {"/instruction": "std_msgs/msg/String", "/joint_states": "sensor_msgs/msg/JointState",
             **{topic: f"sensor_msgs/msg/{'CompressedImage' if compressed else 'Image'}" for topic in cameras}}
    types.update({g.output.topic: "trajectory_msgs/msg/JointTrajectory" for g in c.groups} if commands else {})
    if graph_outputs:
        types.update({"/diagnostics": "diagnostic_msgs/msg/DiagnosticArray", "/estop": "std_msgs/msg/Bool"})
    if storage == "mcap_ros2":
        write_with_mcap_ros2(path, types, events)
    else:
        with Writer(path, version=9, storage_plugin=STORAGE[storage]) as writer:
            conns = {topic: writer.add_connection(topic, msgtype, typestore=STORE) for topic, msgtype in types.items()}
            for t, topic, msg in events:
                writer.write(conns[topic], round(t * 1e9), STORE.serialize_cdr(msg, types[topic]))
    return {"camera_topic": cameras[0], "camera_topics": cameras, "names": names, "rest": rest, "events": len(events),
            "frames": int(duration_s * camera_hz)}


def bag_path(directory: Path, storage: str) -> Path:
    """Where write_test_bag writes for this storage: a rosbag2 directory, or a .mcap file for mcap_ros2."""
    return directory / ("bag.mcap" if storage == "mcap_ros2" else "bag")


def as_dict(value: object) -> object:
    """A rosbags message as plain data for mcap-ros2-support (uint8 arrays as bytes)."""
    if dataclasses.is_dataclass(value):
        return {f.name: as_dict(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "__msgtype__"}
    if isinstance(value, np.ndarray):
        return value.tobytes() if value.dtype == np.uint8 else value.tolist()
    if isinstance(value, list):
        return [as_dict(v) for v in value]
    return value


def write_with_mcap_ros2(path: Path, types: dict[str, str], events: list[tuple[float, str, object]]) -> None:
    """A bare .mcap at `path` as mcap-ros2-support writes it (its own CDR encoder; schemas as rosbag2 names them)."""
    from mcap_ros2.writer import Writer as McapWriter

    with path.open("wb") as f:
        writer = McapWriter(f)
        schemas = {topic: writer.register_msgdef(msgtype, STORE.generate_msgdef(msgtype, ros_version=2)[0])
                   for topic, msgtype in types.items()}
        for t, topic, msg in events:
            writer.write_message(topic, schemas[topic], as_dict(msg), log_time=round(t * 1e9),
                                 publish_time=round(t * 1e9))
        writer.finish()
