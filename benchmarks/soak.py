"""Soak: the whole graph closed loop on the simulated ALOHA robot for a long time; memory, deadlines, drift.

sim_node + policy_node (tiny random checkpoint, CPU) + executor_node (100 Hz) start through bringup as in
the demo. Every 5 s this samples each node's resident memory; from /diagnostics it takes the executor's
missed control deadlines (tick intervals over 1.5 periods of sim time) and every chunk's inference time;
from /joint_states, what the robot did (measured arm joint velocities and accelerations against the limits).
Reports RSS growth per node from the end of warm-up (the first fifth, at least 10 s) to the end, missed
deadlines per 1000 ticks, and inference latency p50 in the first and last thirds (drift).

    python benchmarks/soak.py --duration-s 600 [--json soak.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState

from wall_oss_ros.core.contract import load_contract
from wall_oss_ros.core.resources import config_path
from wall_oss_ros.ros.dds import ros_environment
from wall_oss_ros.tools.demo import CONTRACTS, demo_action_range, graph
from wall_oss_ros.tools.make_tiny_checkpoint import write
from wall_oss_ros.tools.motion_checks import joint_motion

SAMPLE_S = 5.0


def run(duration_s: float, domain_id: int, real_time_factor: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="soak_"))
    contract = load_contract(config_path("robots", f"{CONTRACTS['aloha']}.yaml"))
    ckpt = write(tmp / "ckpt", "transformers", CONTRACTS["aloha"], 0, demo_action_range(contract))
    graph_file = tmp / "graph.yaml"
    graph_file.write_text(yaml.safe_dump(graph(ckpt, "AlohaInsertion-v0", "cpu", 15.0, False, real_time_factor)))
    env = {**os.environ, **ros_environment(domain_id=domain_id), "PYTHONUNBUFFERED": "1"}
    os.environ.update(ros_environment(domain_id=domain_id))
    node_log = (tmp / "nodes.log").open("w")  # the nodes' console: the reasons behind any counted intervention
    bringup = subprocess.Popen([sys.executable, "-m", "wall_oss_ros.tools.cli", "bringup", str(graph_file)], env=env,
                               stdout=subprocess.PIPE, stderr=node_log, text=True, start_new_session=True)
    started_line = bringup.stdout.readline()
    pids = {name: int(pid) for name, pid in re.findall(r"(\w+) \(pid (\d+)\)", started_line)}
    rclpy.init()
    node = rclpy.create_node("soak_monitor", parameter_overrides=[Parameter("use_sim_time", value=True)])
    sim_time = [0.0]
    inference: list[tuple[float, float]] = []
    executor_diag: dict[str, str] = {}

    def on_diag(msg: DiagnosticArray) -> None:
        for s in msg.status:
            values = {kv.key: kv.value for kv in s.values}
            if s.name == "wall_oss_ros: policy" and "inference_s" in values:
                inference.append((sim_time[0], float(values["inference_s"])))
            elif s.name == "wall_oss_ros: executor":
                executor_diag.update(values, message=s.message)

    states: list[tuple[float, tuple[str, ...], list[float]]] = []
    node.create_subscription(JointState, "/joint_states", lambda m: states.append(
        (m.header.stamp.sec + m.header.stamp.nanosec * 1e-9, tuple(m.name), list(m.position))),
        QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE))
    node.create_subscription(Clock, "/clock", lambda m: sim_time.__setitem__(0, m.clock.sec + m.clock.nanosec * 1e-9),
                             10)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag,
                             QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    rss: dict[str, list[tuple[float, float]]] = {name: [] for name in pids}
    start = time.monotonic()
    next_sample = start
    deadline = start + 120 + duration_s / max(real_time_factor, 0.05) * 3
    try:
        while sim_time[0] < duration_s and time.monotonic() < deadline and bringup.poll() is None:
            rclpy.spin_once(node, timeout_sec=0.1)
            if time.monotonic() >= next_sample and sim_time[0] > 0:
                next_sample += SAMPLE_S
                for name, pid in pids.items():
                    with contextlib.suppress(psutil.NoSuchProcess):  # a node that died shows as missing samples
                        rss[name].append((sim_time[0], psutil.Process(pid).memory_info().rss / 2**20))
    finally:
        os.killpg(bringup.pid, signal.SIGINT)
        bringup.wait(timeout=30)
        node_log.close()
        node.destroy_node()
        rclpy.try_shutdown()
    warm = max(10.0, duration_s / 5)

    def growth(samples: list[tuple[float, float]]) -> dict[str, float]:
        after = [m for t, m in samples if t >= warm]
        if len(after) < 2:
            return {"samples": len(after)}
        return {"rss_start_mib": after[0], "rss_end_mib": after[-1], "rss_max_mib": max(after),
                "growth_percent": 100 * (after[-1] - after[0]) / after[0]}

    times = np.array([t for t, _ in inference])
    values = np.array([v for _, v in inference])
    thirds = [values[(times >= a) & (times < b)] for a, b in
              ((warm, warm + (duration_s - warm) / 3), (duration_s - (duration_s - warm) / 3, duration_s + 1))]
    ticks = sim_time[0] * 100.0
    missed = int(executor_diag.get("missed_deadlines", "0"))
    names = states[0][1] if states else ()
    same = [(t, q) for t, n, q in states if n == names]
    measured = joint_motion(np.array([t for t, _ in same]), np.array([q for _, q in same]), names, contract) \
        if len(same) > 2 else {}
    return {
        "machine": f"{psutil.cpu_count()} cores", "sim_time_s": sim_time[0], "wall_s": time.monotonic() - start,
        "real_time_factor": real_time_factor, "rss": {name: growth(s) for name, s in rss.items()},
        "missed_deadlines": missed, "missed_per_1000_ticks": 1000 * missed / ticks if ticks else None,
        "tick_interval_ms": {k: executor_diag.get(f"tick_interval_{k}_ms") for k in ("p50", "p99", "max")},
        "chunks": len(values),
        "inference_p50_ms_first_third": float(np.median(thirds[0]) * 1e3) if len(thirds[0]) else None,
        "inference_p50_ms_last_third": float(np.median(thirds[1]) * 1e3) if len(thirds[1]) else None,
        "measured": measured, "joint_states": len(same),
        "executor_state": executor_diag.get("state"),
        "executor_message": executor_diag.get("message"),
        "interventions": {k.removeprefix("interventions/"): int(v) for k, v in executor_diag.items()
                          if k.startswith("interventions/")},
        "warnings_and_errors": problems(tmp / "nodes.log"),
    }


def problems(log: Path, keep: int = 12) -> list[str]:
    """The nodes' WARN, ERROR and FATAL lines but the gripper clamp the random model causes all along (at most
    `keep`, the first ones): what a counted rejection or fault was."""
    lines = [line for line in log.read_text(errors="replace").splitlines()
             if re.search(r"\[(WARN|ERROR|FATAL)\]", line) and "gripper target was clamped" not in line]
    return lines[:keep]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration-s", type=float, default=600.0, help="sim time to run [s]")
    parser.add_argument("--real-time-factor", type=float, default=0.5)
    parser.add_argument("--domain-id", type=int, default=63)
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()
    report = run(args.duration_s, args.domain_id, args.real_time_factor)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
