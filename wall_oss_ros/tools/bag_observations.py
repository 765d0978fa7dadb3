"""A bag's observations, formed one at a time by the live policy node's synchroniser, with the recorded
trajectory beside them: what `eval-openloop` scores against and `bag-to-lerobot` writes.

Observations come from the same `ObservationAssembler` as `policy_node`, fed in the order the messages were
received, so a sample here is the observation the live node would have computed from. Ground truth is what
the robot did next: the recorded joint commands when the bag has them, else the recorded joint states (an arm
commanded in joint space through IK: the pose of their forward kinematics). Every
series is on one time source (bag_timing.py). The stream holds only the frames of the newest observation, so
a recording longer than memory can be read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from wall_oss_ros.core.contract import CameraTransport, Group, GroupKind, OutputKind, RobotContract
from wall_oss_ros.core.ik_stage import arm_kinematics
from wall_oss_ros.core.observation import NO_NEW_OBSERVATION, ObservationAssembler, Snapshot
from wall_oss_ros.core.rotations import matrix_to_rot6d
from wall_oss_ros.tools.bag_timing import RecordingAudit

INSTRUCTION_TOPIC = "/instruction"


def ee_pose_values(group: Group, joints: Mapping[str, float]) -> np.ndarray:
    """xyz + 6-D rotation of an IK group's tip for these joint positions (the layout of its actions)."""
    xyz, rotation = arm_kinematics(group).forward(np.array([joints[j] for j in group.joints], dtype=float))
    return np.concatenate([xyz, matrix_to_rot6d(rotation)])


def _stamp(msg) -> float:  # noqa: ANN001 - a deserialised message with a header
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


class RecordingStream:
    """Iterate for the synchronised observations; meanwhile `truth_*` fill with the recorded trajectory
    (contract action order, NaN where a dimension has no record in that message) and `instructions` with
    (observations formed before it arrived, text). Call `finish()` after iterating: it counts the frame left
    waiting and refuses stamps that the chosen time source cannot use."""

    def __init__(self, bag: Path, contract: RobotContract, sync_tolerance_s: float = 0.05,
                 time_source: str = "header", max_clock_offset_s: float = 0.1) -> None:
        self.bag, self.contract, self.sync_tolerance_s = Path(bag), contract, sync_tolerance_s
        self.audit = RecordingAudit(time_source, max_clock_offset_s)
        self.truth_source = ""  # "commands" or "joint_states", known once the bag is open
        self.truth_times: list[float] = []
        self.truth_values: list[np.ndarray] = []
        self.instructions: list[tuple[int, str]] = []
        self.observations = 0
        self.camera_topics: dict[str, str] = {}  # camera name → the topic read for it
        self.duration_s = 0.0  # of the recording, from its metadata
        self._pending = ""  # why the newest frame has not made an observation yet ("": none waiting)

    def __iter__(self) -> Iterator[Snapshot]:
        from rosbags.highlevel import AnyReader, AnyReaderError

        from wall_oss_ros.ros.bag_types import typestore_with_own_messages

        contract, bag = self.contract, self.bag
        cameras = {c.topic: c for c in contract.cameras}
        command_groups = {g.output.topic: g for g in contract.groups if g.output.kind is OutputKind.JTC}
        column = {(g.name, axis): contract.action_slice(g).start + i for g in contract.groups
                  if g.kind in (GroupKind.JOINT_POSITION, GroupKind.GRIPPER) for i, axis in enumerate(g.axes)}
        joint_column = {axis: col for (_, axis), col in column.items()}
        ik_groups = [g for g in contract.groups if g.ik is not None]
        dim = len(contract.action_names)

        def record(t: float, row: np.ndarray, joints: dict[str, float]) -> None:
            for g in ik_groups:  # an arm commanded in joint space: its pose is the joints' forward kinematics
                if all(j in joints for j in g.joints):
                    row[contract.action_slice(g)] = ee_pose_values(g, joints)
            if np.isfinite(row).any():
                self.truth_times.append(t)
                self.truth_values.append(row)
        try:
            reader = AnyReader([bag], default_typestore=typestore_with_own_messages())
            reader.open()
        except (AnyReaderError, OSError, ValueError) as exc:
            raise ValueError(f"{bag}: cannot read the bag ({exc})") from exc
        try:
            self.duration_s = reader.duration * 1e-9
            present = set(reader.topics)
            for topic in list(cameras):  # image_transport's compressed twin stands in for a missing raw topic
                if topic not in present and f"{topic}/compressed" in present:
                    cameras[f"{topic}/compressed"] = cameras.pop(topic)
            self.camera_topics = {cam.name: topic for topic, cam in cameras.items()}
            needed = set(cameras) | set(contract.joint_state_topics)
            missing = sorted(needed - present)
            if missing:
                raise ValueError(f"{bag}: the {contract.name} contract needs topics {missing}, the bag has "
                                 f"{sorted(present)}")
            for topic, cam in cameras.items():
                compressed = cam.transport is CameraTransport.COMPRESSED or topic.endswith("/compressed")
                expected = "CompressedImage" if compressed else "Image"
                if not reader.topics[topic].msgtype.endswith(f"/{expected}"):
                    raise ValueError(f"{bag}: {topic} holds {reader.topics[topic].msgtype}, the contract expects "
                                     f"{expected}")
            use_commands = any(t in present for t in command_groups)
            self.truth_source = "commands" if use_commands else "joint_states"
            audit = self.audit
            assembler = ObservationAssembler(contract, self.sync_tolerance_s, max_age_s=float("inf"))
            wanted = [c for c in reader.connections if c.topic in needed or c.topic in command_groups or
                      c.topic == INSTRUCTION_TOPIC]
            try:
                for conn, t_ns, raw in reader.messages(connections=wanted):
                    now = t_ns * 1e-9
                    msg = reader.deserialize(raw, conn.msgtype)
                    if conn.topic == INSTRUCTION_TOPIC:
                        self.instructions.append((self.observations, msg.data))
                        continue
                    t = audit.time(conn.topic, _stamp(msg), now)
                    if t is None:  # out of order on its topic: counted, not used
                        continue
                    if conn.topic in cameras:
                        if self._pending:
                            audit.unsynchronised[self._pending] += 1  # superseded before it made an observation
                        assembler.add_frame(cameras[conn.topic].name, t, msg)
                        self._pending = "waiting"
                    elif conn.topic in contract.joint_state_topics:
                        positions = dict(zip(msg.name, (float(x) for x in msg.position), strict=False))
                        if not all(np.isfinite(v) for v in positions.values()):
                            audit.not_finite(conn.topic)
                            continue
                        assembler.add_joints(t, positions)
                        if not use_commands:
                            row = np.full(dim, np.nan)
                            for axis, value in positions.items():
                                if axis in joint_column:
                                    row[joint_column[axis]] = value
                            record(t, row, positions)
                    elif conn.topic in command_groups and msg.points:
                        g = command_groups[conn.topic]
                        point = msg.points[0]
                        if not np.all(np.isfinite(np.asarray(point.positions, dtype=float))):
                            audit.not_finite(conn.topic)
                            continue
                        row = np.full(dim, np.nan)
                        commanded = {str(a): float(v) for a, v in zip(msg.joint_names, point.positions, strict=False)}
                        for axis, value in commanded.items():
                            if (g.name, axis) in column:
                                row[column[(g.name, axis)]] = value
                        record(t + point.time_from_start.sec + point.time_from_start.nanosec * 1e-9, row,
                               commanded if g.ik is not None else {})
                    if self._pending:
                        snapshot, reason = assembler.snapshot(now)
                        if snapshot is None:
                            self._pending = reason if reason != NO_NEW_OBSERVATION else self._pending
                            continue
                        self._pending = ""
                        self.observations += 1
                        yield snapshot
            except (AnyReaderError, OSError, ValueError, KeyError) as exc:
                raise ValueError(f"{bag}: the bag is truncated or corrupt ({exc})") from exc
        finally:
            reader.close()

    def finish(self) -> None:
        if self._pending:
            self.audit.unsynchronised[self._pending] += 1
            self._pending = ""
        self.audit.check(self.bag, tuple(self.camera_topics.values()) + tuple(self.contract.joint_state_topics))

    def truth(self) -> tuple[np.ndarray, np.ndarray]:
        """(times (T,), values (T, D)) read so far, sorted by time."""
        dim = len(self.contract.action_names)
        times = np.array(self.truth_times)
        values = np.array(self.truth_values) if self.truth_values else np.zeros((0, dim))
        order = np.argsort(times, kind="stable")
        return times[order], values[order]

    def no_observation_reason(self) -> str:
        reasons = "; ".join(f"{why} ({n} frames)" for why, n in self.audit.unsynchronised.most_common(3))
        return f"{self.bag}: no synchronised observation: {reasons or 'no camera frame'}"
