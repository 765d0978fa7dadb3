"""The whole graph in separate processes; killing the policy halts the robot smoothly with an ERROR."""

from __future__ import annotations

import json
import signal
import socket
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import QoSProfile, ReliabilityPolicy

from test.support.executor_run import assert_ramps
from test.support.robots import contract
from test.support.ros_process import RosProcess
from test.support.spin import spin_until
from wall_oss_ros.msg import ExecutorStatus

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def chunk_timeouts(status: ExecutorStatus) -> int:
    return status.intervention_counts[list(status.intervention_kinds).index(ExecutorStatus.INTERVENTION_CHUNK_TIMEOUT)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(port: int, server: RosProcess, timeout_s: float = 120.0) -> None:
    """Until the policy server answers /healthz (loading a model on a busy machine takes a while)."""
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        assert server.popen.poll() is None and time.monotonic() < deadline, f"no server: {server.stderr()[-1500:]}"
        time.sleep(0.5)


@pytest.mark.parametrize("where", ["local", "remote"])
def test_killed_policy_makes_the_executor_halt_and_report_error(ros_node, domain_id, tmp_path, where):
    """local: policy_node killed. remote: the policy server (wall-oss-ros serve) that policy_node's openpi
    backend talks to killed mid-stream. Either way, no chunk: the same smooth halt and ERROR."""
    from wall_oss_ros.tools.make_tiny_checkpoint import write

    c = contract("aloha_bimanual")
    ckpt = write(tmp_path / "ckpt", "transformers", "aloha_bimanual", 0)
    out = tmp_path / "commands.json"
    if where == "local":
        robot = RosProcess("fake_robot.py", "--camera", "--duration-s", "25", "--out", str(out), domain_id=domain_id)
        policy = RosProcess("../../wall_oss_ros/ros/policy_node.py", "--activate", "--ros-args", "-p",
                            f"checkpoint:={ckpt}", "-p", "instruction:=insert the peg", "-p", "device:=cpu",
                            domain_id=domain_id)
        victim, helpers = policy, []
    else:
        port = free_port()
        victim = RosProcess("../../wall_oss_ros/tools/cli.py", "serve", str(ckpt), "--port", str(port), "--device",
                            "cpu", domain_id=domain_id)
        wait_healthy(port, victim)
        policy = RosProcess("../../wall_oss_ros/ros/policy_node.py", "--activate", "--ros-args", "-p",
                            "backend:=openpi", "-p", f"server_uri:=ws://127.0.0.1:{port}", "-p",
                            "instruction:=insert the peg", "-p", "server_timeout_s:=5.0", domain_id=domain_id)
        helpers = [victim]
        # After the server is up (a model loading on a busy machine takes a good part of the robot's 25 s).
        robot = RosProcess("fake_robot.py", "--camera", "--duration-s", "25", "--out", str(out), domain_id=domain_id)
    executor = RosProcess("../../wall_oss_ros/ros/executor_node.py", "--activate", "--ros-args", "-p",
                          "autostart:=true", "-p", "chunk_timeout_s:=1.0", "-p", "max_chunk_age_s:=2.0",
                          domain_id=domain_id)
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    statuses: list[ExecutorStatus] = []
    errors: list[float] = []
    messages: list[str] = []
    ros_node.create_subscription(ExecutorStatus, "/executor_node/status", statuses.append, reliable)

    def on_diag(msg: DiagnosticArray) -> None:
        for s in msg.status:
            if s.name.endswith("executor") and s.level == DiagnosticStatus.ERROR:
                errors.append(time.time())
                messages.append(s.message)

    ros_node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, reliable)
    try:
        robot.read_json_line(timeout_s=30)
        running = spin_until(ros_node, lambda: bool(statuses) and statuses[-1].state == ExecutorStatus.STATE_RUNNING
                             and statuses[-1].has_active_chunk, 60)
        assert running, (f"graph never ran: policy stderr\n{policy.stderr()[-1500:]}\n"
                         f"executor stderr\n{executor.stderr()[-1500:]}")
        spin_until(ros_node, lambda: False, 2.0)
        timeouts_before, seen = chunk_timeouts(statuses[-1]), len(statuses)
        killed_at = time.time()
        victim.popen.send_signal(signal.SIGKILL)
        # The halt for the missing chunks: its status, or its counter (on a busy machine the fake robot's joint
        # states can lag the braking arm past the tracking tolerance a status later, and that fault's code
        # replaces it).
        halted = spin_until(ros_node, lambda: any(
            s.status_code == ExecutorStatus.STATUS_HALT_CHUNK_TIMEOUT or chunk_timeouts(s) > timeouts_before
            for s in statuses[seen:]), 5)
        halt_seen = time.time()
        assert halted, f"no halt: {statuses[-1]}"
        print(f"policy SIGKILL halt latency: {halt_seen - killed_at:.2f} s")
        assert halt_seen - killed_at < 1.0 + 1.0  # chunk_timeout_s + one status period + transport
        spin_until(ros_node, lambda: statuses[-1].state == ExecutorStatus.STATE_HOLDING, 5)
        assert any(t > killed_at for t in errors), "no ERROR diagnostic after the policy died"
        if where == "local":  # once DDS has dropped the dead process (its lease, 5 s), the halt names it
            gone = "no node publishes /policy_node/action_chunk"
            assert spin_until(ros_node, lambda: any(gone in m for m in messages), 15), messages[-1:]
    finally:
        for p in (executor, policy, robot, *helpers):
            p.stop()
    assert out.exists(), f"the robot recorded nothing: {robot.stderr()[-1000:]}"
    records = [r for r in json.loads(out.read_text()) if r["group"] == "left_arm"]
    stamps = np.array([r["stamp"] for r in records])  # when commanded (a starved recorder reads late)
    velocities = np.array([r["velocities"] for r in records])
    positions = np.array([r["positions"] for r in records])
    arm = c.group("left_arm")
    lo, hi = np.array([x.position_min for x in arm.limits]), np.array([x.position_max for x in arm.limits])
    assert np.all(positions >= lo) and np.all(positions <= hi)
    late = stamps > halt_seen + 0.6
    if late.any():
        assert np.abs(velocities[late]).max() == 0.0  # stopped, holding
    assert_ramps(velocities, [r["stamp"] for r in records], arm.limits[0].acceleration_max)  # no velocity jump
