"""Our messages cross a process boundary over real DDS with every field intact."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import psutil
import pytest
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from test.support.msg_samples import assert_msgs_equal, sample_action_chunk, sample_executor_status
from test.support.ros_process import REPO_ROOT, RosProcess
from test.support.spin import spin_until
from wall_oss_ros.msg import ActionChunk, ExecutorStatus

pytestmark = pytest.mark.ros
SEEDS = [1, 2, 3, 4]


def test_messages_arrive_in_another_process_unchanged(ros_node, domain_id):
    received: dict[type, list] = {ActionChunk: [], ExecutorStatus: []}
    qos = QoSProfile(depth=len(SEEDS), reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
    ros_node.create_subscription(ActionChunk, "samples/action_chunk", received[ActionChunk].append, qos)
    ros_node.create_subscription(ExecutorStatus, "samples/executor_status", received[ExecutorStatus].append, qos)
    with RosProcess("publish_samples.py", "--seeds", *map(str, SEEDS), domain_id=domain_id) as publisher:
        assert publisher.read_json_line(timeout_s=30)["published"] == SEEDS
        done = spin_until(ros_node, lambda: all(len(v) == len(SEEDS) for v in received.values()), timeout_s=20)
        assert done, f"received {[len(v) for v in received.values()]} of {len(SEEDS)} each"
    for seed, chunk, status in zip(SEEDS, received[ActionChunk], received[ExecutorStatus], strict=True):
        assert_msgs_equal(sample_action_chunk(seed), chunk, f"ActionChunk(seed={seed})")
        assert_msgs_equal(sample_executor_status(seed), status, f"ExecutorStatus(seed={seed})")


def _msg_constants(path: Path) -> dict[str, int | str]:
    constants: dict[str, int | str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*(\w+)\s+([A-Z][A-Z0-9_]*)\s*=\s*(\"[^\"]*\"|-?\d+)", line)
        if match:
            kind, name, value = match.groups()
            constants[name] = value.strip('"') if kind == "string" else int(value)
    return constants


@pytest.mark.parametrize("msg_type", [ActionChunk, ExecutorStatus])
def test_generated_constants_match_the_msg_files(msg_type):
    declared = _msg_constants(REPO_ROOT / "msg" / f"{msg_type.__name__}.msg")
    generated = {name: getattr(msg_type, name) for name in declared}
    assert declared == generated
    if msg_type is ExecutorStatus:
        states = [v for k, v in declared.items() if k.startswith("STATE_")]
        assert sorted(states) == list(range(7)), "states IDLE..FAULT are 0..6 without gaps"


def test_ros_processes_use_loopback_only(domain_id):
    """With the project's profile every socket of a node binds a loopback address."""
    with RosProcess("publish_samples.py", "--seeds", "1", domain_id=domain_id) as publisher:
        publisher.read_json_line(timeout_s=30)
        sockets = psutil.Process(publisher.pid).net_connections(kind="inet")
    assert sockets, "a DDS participant opens sockets"
    outside = [s.laddr for s in sockets if not ipaddress.ip_address(s.laddr.ip).is_loopback]
    assert outside == [], f"sockets bound beyond loopback: {outside}"


def test_many_processes_discover_each_other(domain_id):
    """More participants than Fast DDS's default initial-peer range (4) still find each other."""
    names = [f"p{i}" for i in range(6)]
    processes = [RosProcess("roll_call.py", "--name", n, "--expect", str(len(names)), domain_id=domain_id)
                 for n in names]
    try:
        reports = [p.read_json_line(timeout_s=40) for p in processes]
    finally:
        for p in processes:
            p.stop()
    for report in reports:
        assert report["heard"] == sorted(names), f"{report['name']} heard only {report['heard']}"
