"""`wall-oss-ros bringup`: nodes start as separate processes, and a signal stops them all cleanly."""

from __future__ import annotations

import signal
import subprocess
import time

import psutil
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy

from test.support.spin import spin_until
from wall_oss_ros.msg import ExecutorStatus
from wall_oss_ros.ros.dds import ros_environment
from wall_oss_ros.tools.bringup import BringupError, command, parse_graph

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_graph_starts_and_stops_on_sigint(ros_node, domain_id, tmp_path):
    graph = tmp_path / "graph.yaml"
    graph.write_text("nodes:\n  - executable: executor_node\n"
                     "    parameters: {contract: aloha_bimanual, dry_run: true, status_hz: 10.0}\n")
    proc = subprocess.Popen(["wall-oss-ros", "bringup", str(graph)], env=ros_environment(domain_id=domain_id),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    statuses: list[ExecutorStatus] = []
    ros_node.create_subscription(ExecutorStatus, "/executor_node/status", statuses.append,
                                 QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
    try:
        assert spin_until(ros_node, lambda: len(statuses) > 0, 30), "no status from the brought-up executor"
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "the node runs in a process of its own"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        time.sleep(0.5)
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    finally:
        if proc.poll() is None:
            proc.kill()


def test_graph_file_errors_name_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes:\n  - executable: teleporter\n")
    with pytest.raises(BringupError, match=r"nodes\[0\]\.executable"):
        parse_graph(bad)
    bad.write_text("nodes: []\n")
    with pytest.raises(BringupError, match="non-empty list"):
        parse_graph(bad)


def test_parameters_become_ros_args(tmp_path):
    graph = tmp_path / "g.yaml"
    graph.write_text("use_sim_time: true\nnodes:\n  - executable: policy_node\n"
                     "    parameters: {instruction: insert the peg, denoising_steps: 5, rtc: true}\n")
    specs, sim = parse_graph(graph)
    args = command(specs[0], sim)
    assert args[1:4] == ["-m", "wall_oss_ros.ros.policy_node", "--activate"]
    assert "instruction:=insert the peg" in args and "denoising_steps:=5" in args and "rtc:=true" in args
    assert "use_sim_time:=true" in args


def test_string_parameters_stay_strings(tmp_path):
    """Empty strings and strings YAML would read as numbers or booleans reach the node as strings."""
    graph = tmp_path / "g.yaml"
    graph.write_text("nodes:\n  - executable: policy_node\n"
                     "    parameters: {device: '', instruction: 'true', dataset: '1.5', frame_id: \"it's\"}\n")
    args = command(parse_graph(graph)[0][0], False)
    assert "device:=''" in args and "instruction:='true'" in args and "dataset:='1.5'" in args
    assert "frame_id:=it's" in args  # plain YAML already


def test_a_node_may_override_use_sim_time(tmp_path):
    graph = tmp_path / "g.yaml"
    graph.write_text("use_sim_time: true\nnodes:\n  - executable: sim_node\n    parameters: {use_sim_time: false}\n")
    args = command(parse_graph(graph)[0][0], True)
    assert "use_sim_time:=false" in args and "use_sim_time:=true" not in args
