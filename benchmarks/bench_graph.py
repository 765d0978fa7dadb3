"""Latency through the ROS graph, without the model's time, and the executor's control-timer jitter.

Starts policy_node (a tiny random checkpoint on the CPU) and executor_node (100 Hz, autostart) as
separate processes over DDS; this process is the robot: 640×480 rgb8 frames at 30 Hz and joint states at
100 Hz that follow the commands. Per chunk, the executor reports t_obs → its first command from the chunk
(`observation_to_command_s`) and the policy its `inference_s`; their difference is what the graph adds
(transport of frames and chunk, synchronisation, decoding, pre/post-processing, the wait for the next tick).
Jitter: the executor's own tick intervals (wall clock, last 1000 ticks) and the gaps between commands as
received here.

    python benchmarks/bench_graph.py [--duration-s 30]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory

from wall_oss_ros.core.contract import GroupKind
from wall_oss_ros.ros.dds import ros_environment
from wall_oss_ros.ros.executor_node import resolve_contract
from wall_oss_ros.tools.bringup import NodeSpec, command
from wall_oss_ros.tools.make_tiny_checkpoint import write

ALOHA_START = (0.0, -0.96, 1.16, 0.0, -0.3, 0.0)  # a pose inside every joint range (gym-aloha's start)


def percentiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values) * 1e3
    return {"n": len(a), "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "max_ms": float(a.max())}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration-s", type=float, default=30.0)
    parser.add_argument("--domain-id", type=int, default=61)
    args = parser.parse_args()
    os.environ.update(ros_environment(domain_id=args.domain_id))
    contract = resolve_contract("aloha_bimanual")
    tmp = Path(tempfile.mkdtemp(prefix="bench_graph_"))
    ckpt = write(tmp / "ckpt", "transformers", "aloha_bimanual", 0)
    specs = [NodeSpec("policy_node", "wall_oss_ros.ros.policy_node",
                      {"checkpoint": str(ckpt), "device": "cpu", "instruction": "insert the peg"}),
             NodeSpec("executor_node", "wall_oss_ros.ros.executor_node",
                      {"autostart": True, "control_hz": 100.0, "max_chunk_age_s": 2.0})]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    children = [subprocess.Popen(command(s, False), env=env, start_new_session=True, stderr=subprocess.DEVNULL)
                for s in specs]

    rclpy.init()
    node = rclpy.create_node("bench_robot")
    joints = {}
    for g in contract.groups:
        if g.kind in (GroupKind.JOINT_POSITION, GroupKind.GRIPPER):
            joints.update(zip(g.axes, ALOHA_START if len(g.axes) == 6 else [0.5], strict=True))
    state_pub = node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
    camera_pub = node.create_publisher(Image, contract.cameras[0].topic, qos_profile_sensor_data)
    pixels = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8).tobytes()
    command_times: list[float] = []
    inference: dict[int, float] = {}
    obs_to_cmd: dict[int, float] = {}
    ticks: dict[str, float] = {}

    def on_command(msg: JointTrajectory, record: bool) -> None:
        joints.update(zip(msg.joint_names, msg.points[0].positions, strict=True))
        if record:
            command_times.append(time.monotonic())

    for i, g in enumerate(contract.groups):
        node.create_subscription(JointTrajectory, g.output.topic, lambda m, r=(i == 0): on_command(m, r), 10)

    def on_diag(msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name == "wall_oss_ros: policy" and "inference_s" in values:
                inference[int(values["chunk_id"])] = float(values["inference_s"])
            elif status.name == "wall_oss_ros: executor" and values.get("chunk_id"):
                latency = float(values["observation_to_command_s"])
                if np.isfinite(latency):
                    obs_to_cmd[int(values["chunk_id"])] = latency
                ticks.update({k: float(v) for k, v in values.items() if k.startswith("tick_interval_")})

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag,
                             QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))

    def publish_state() -> None:
        msg = JointState(name=list(joints), position=list(joints.values()))
        msg.header.stamp = node.get_clock().now().to_msg()
        state_pub.publish(msg)

    def publish_frame() -> None:
        frame = Image(height=480, width=640, encoding="rgb8", step=640 * 3, data=pixels)
        frame.header.stamp = node.get_clock().now().to_msg()
        camera_pub.publish(frame)

    node.create_timer(0.01, publish_state)
    node.create_timer(1 / 30, publish_frame)
    start = time.monotonic()
    print(f"running the graph for {args.duration_s:.0f} s (policy_node + executor_node + this robot)...", flush=True)
    try:
        while time.monotonic() - start < args.duration_s:
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        for child in children:
            os.killpg(child.pid, signal.SIGINT)
        for child in children:
            child.wait(timeout=15)
        node.destroy_node()
        rclpy.try_shutdown()

    matched = sorted(set(inference) & set(obs_to_cmd))
    if not matched:
        print("no chunk reached a command: is the graph running?")
        return 1
    graph = [obs_to_cmd[i] - inference[i] for i in matched]
    settled = np.asarray(command_times)
    gaps = np.diff(settled[settled > start + 5.0]).tolist()  # after start-up
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "chunks": len(matched),
        "observation_to_command_excluding_model": percentiles(graph),
        "observation_to_command_total": percentiles([obs_to_cmd[i] for i in matched]),
        "inference": percentiles([inference[i] for i in matched]),
        "executor_tick_interval_ms": ticks,
        "command_receipt_interval": percentiles(gaps),
    }
    report["ratios"] = {"tick_p99_over_period": ticks.get("tick_interval_p99_ms", float("nan")) / 10.0,
                        "graph_p50_over_total_p50": report["observation_to_command_excluding_model"]["p50_ms"]
                        / report["observation_to_command_total"]["p50_ms"]}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
