"""A closed-loop run read back from its bag (rosbags): what every report and check of the run starts from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader

from wall_oss_ros.core.contract import OutputKind, RobotContract
from wall_oss_ros.ros.bag_types import typestore_with_own_messages


def _sec(stamp) -> float:  # noqa: ANN001 - a deserialised builtin_interfaces/Time or Duration
    return stamp.sec + stamp.nanosec * 1e-9


@dataclass(frozen=True)
class Command:
    """One JointTrajectory message as recorded: its first point (the command state at the stamp)."""

    t: float  # receive time [s, bag clock]
    stamp: float  # header.stamp [s]; 0: start on receipt (stream mode)
    positions: np.ndarray
    velocities: np.ndarray
    period_s: float  # spacing of its points (horizon mode) or its single point's time_from_start (stream mode)


@dataclass(frozen=True)
class Chunk:
    """One ActionChunk as recorded: step i targets t_obs + i * dt_s."""

    arrival: float  # receive time [s, bag clock]
    t_obs: float
    dt_s: float
    names: tuple[str, ...]
    values: np.ndarray  # horizon x dim
    inference_s: float
    state: dict[str, float]  # the observed state, by name (relative actions are offsets from it)


@dataclass
class RunData:
    joint_t: list[float] = field(default_factory=list)
    joint_names: tuple[str, ...] = ()
    joint_q: list[np.ndarray] = field(default_factory=list)
    commands: dict[str, list[Command]] = field(default_factory=dict)  # per JTC group
    chunks: list[Chunk] = field(default_factory=list)
    status_t: list[float] = field(default_factory=list)
    status_state: list[int] = field(default_factory=list)
    status_interventions: list[dict[str, int]] = field(default_factory=list)
    faults: list[tuple[float, str]] = field(default_factory=list)  # (time, text) whenever last_fault changed
    reward: list[float] = field(default_factory=list)
    base_odometry: list[tuple[float, float, float]] = field(default_factory=list)  # (t, x, y) [s, m, m]
    missed_deadlines: int | None = None  # the executor's count on /diagnostics, last seen

    @property
    def chunk_arrival(self) -> list[float]:
        return [c.arrival for c in self.chunks]


def _command(t: float, msg) -> Command:  # noqa: ANN001 - a deserialised trajectory_msgs/JointTrajectory
    first = msg.points[0]
    times = [_sec(p.time_from_start) for p in msg.points[:2]]
    period = times[1] - times[0] if len(times) > 1 else times[0]
    return Command(t, _sec(msg.header.stamp), np.asarray(first.positions, dtype=float),
                   np.asarray(first.velocities, dtype=float), period)


def read_run(bag: Path, contract: RobotContract) -> RunData:
    topics = {g.output.topic: g.name for g in contract.groups if g.output.kind is OutputKind.JTC}
    data = RunData(commands={name: [] for name in topics.values()})
    with AnyReader([Path(bag)], default_typestore=typestore_with_own_messages()) as reader:
        for conn, t_ns, raw in reader.messages():
            t = t_ns * 1e-9
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic in contract.joint_state_topics:
                data.joint_t.append(_sec(msg.header.stamp))
                data.joint_names = tuple(msg.name)
                data.joint_q.append(np.asarray(msg.position, dtype=float))
            elif conn.topic in topics and len(msg.points):
                data.commands[topics[conn.topic]].append(_command(t, msg))
            elif conn.msgtype == "wall_oss_ros/msg/ActionChunk":
                values = np.asarray(msg.values, dtype=float).reshape(int(msg.horizon), int(msg.dim))
                data.chunks.append(Chunk(t, _sec(msg.header.stamp), float(msg.dt_s), tuple(msg.action_names),
                                         values, _sec(msg.inference_end) - _sec(msg.inference_start),
                                         dict(zip(msg.state_names, (float(x) for x in msg.state), strict=False))))
            elif conn.msgtype == "wall_oss_ros/msg/ExecutorStatus":
                data.status_t.append(t)
                data.status_state.append(int(msg.state))
                data.status_interventions.append(dict(zip(msg.intervention_kinds,
                                                          (int(c) for c in msg.intervention_counts), strict=True)))
                if msg.last_fault and (not data.faults or data.faults[-1][1] != msg.last_fault):
                    data.faults.append((t, msg.last_fault))
            elif conn.msgtype == "diagnostic_msgs/msg/DiagnosticArray":
                for status in msg.status:
                    values = {kv.key: kv.value for kv in status.values}
                    if status.name == "wall_oss_ros: executor" and "missed_deadlines" in values:
                        data.missed_deadlines = int(values["missed_deadlines"])
            elif conn.topic.endswith("/reward"):
                data.reward.append(float(msg.data))
            elif conn.msgtype == "nav_msgs/msg/Odometry":
                position = msg.pose.pose.position
                data.base_odometry.append((_sec(msg.header.stamp), float(position.x), float(position.y)))
    return data
