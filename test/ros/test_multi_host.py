"""The graph split over two hosts joined by a real network link: two network namespaces and a veth pair,
each side with the network DDS profile `wall-oss-ros dds-profile` writes (UDP only, unicast discovery,
no loopback, no shared memory), so every frame, chunk and status crosses the link. The robot and the
executor on one host, the policy (or our policy server) on the other."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time

import numpy as np
import pytest

from test.support.ros_process import RosProcess, node_process
from wall_oss_ros.ros.dds import PROFILE_ENV, network_profile

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


@pytest.fixture
def two_hosts(tmp_path):
    """(robot namespace, its address, GPU namespace, its address, env of each): a /30 link of their own."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("network namespaces need iproute2 and root")
    tag = f"w{os.getpid() % 10000}"
    robot, gpu = f"{tag}r", f"{tag}g"
    subnet = 16 + os.getpid() % 200
    addresses = {robot: f"10.231.{subnet}.1", gpu: f"10.231.{subnet}.2"}
    if _ip("netns", "add", robot).returncode != 0:
        pytest.skip(f"the kernel refuses network namespaces here: {_ip('netns', 'add', robot).stderr.strip()}")
    try:
        _ip("netns", "add", gpu)
        _ip("link", "add", f"{tag}a", "type", "veth", "peer", "name", f"{tag}b")
        for ns, dev in ((robot, f"{tag}a"), (gpu, f"{tag}b")):
            _ip("link", "set", dev, "netns", ns)
            _ip("-n", ns, "addr", "add", f"{addresses[ns]}/30", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        envs = {}
        for ns, other in ((robot, gpu), (gpu, robot)):
            profile = tmp_path / f"{ns}.xml"
            profile.write_text(network_profile(addresses[ns], [addresses[other]]))
            envs[ns] = {PROFILE_ENV: str(profile)}
        yield robot, addresses[robot], gpu, addresses[gpu], envs
    finally:
        for ns in (robot, gpu):
            _ip("netns", "del", ns)


def _run(domain_id, tmp_path, two_hosts, policy_side, stamp_offset_s: float = 0.0, seconds: float = 25.0) -> dict:
    """Robot and executor on the robot host; what policy_side(...) starts on the other. Returns the robot's
    commands and the executor's last status line."""
    robot_ns, _, gpu_ns, gpu_address, envs = two_hosts
    out = tmp_path / "commands.json"
    others = policy_side(gpu_ns, gpu_address, envs, robot_ns)  # first: a server loads its model before serving
    robot = RosProcess("fake_robot.py", "--camera", "--duration-s", str(seconds), "--out", str(out),
                       "--stamp-offset-s", str(stamp_offset_s), domain_id=domain_id, netns=robot_ns,
                       env=envs[robot_ns])
    executor = node_process("executor_node", domain_id, netns=robot_ns, env=envs[robot_ns], autostart=True,
                            chunk_timeout_s=3.0, max_chunk_age_s=2.0, tracking_grace_s=1.0, follow_window_s=0.0)
    try:
        robot.read_json_line(timeout_s=60)
        assert robot.wait(timeout_s=seconds + 60) == 0, robot.stderr()[-2000:]
    finally:
        for p in (executor, *others):
            p.stop()
        robot.stop()
    records = json.loads(out.read_text())
    return {"records": records, "executor": executor.stderr(), "others": [p.stderr() for p in others]}


def test_frames_chunks_and_commands_cross_the_link(domain_id, tmp_path, two_hosts, tiny_checkpoint):
    def policy(gpu_ns, _address, envs, _robot_ns):
        return [node_process("policy_node", domain_id, netns=gpu_ns, env=envs[gpu_ns], checkpoint=tiny_checkpoint,
                             device="cpu", instruction="insert the peg")]

    run = _run(domain_id, tmp_path, two_hosts, policy)
    arm = [r for r in run["records"] if r["group"] == "left_arm"]
    moving = [r for r in arm if np.abs(r["velocities"]).max() > 1e-3]
    # The executor on the robot host commanded motion: chunks computed on the other host from its frames.
    assert len(moving) > 20, (f"no motion commanded\nexecutor:\n{run['executor'][-1500:]}\n"
                              f"policy:\n{run['others'][0][-1500:]}")


def test_chunks_from_a_host_whose_clock_is_ahead_are_refused(domain_id, tmp_path, two_hosts, tiny_checkpoint):
    """The robot host's stamps 0.5 s ahead of the executor's clock: every chunk (stamped with its
    observation's t_obs) arrives from the future, is refused with the offset named, and nothing moves."""
    def policy(gpu_ns, _address, envs, _robot_ns):
        return [node_process("policy_node", domain_id, netns=gpu_ns, env=envs[gpu_ns], checkpoint=tiny_checkpoint,
                             device="cpu", instruction="insert the peg", max_observation_age_s=5.0)]

    run = _run(domain_id, tmp_path, two_hosts, policy, stamp_offset_s=0.5, seconds=20.0)
    arm = [r for r in run["records"] if r["group"] == "left_arm"]
    assert not any(np.abs(r["velocities"]).max() > 0.0 for r in arm), "a chunk from the future was executed"
    assert "future" in run["executor"] or "clock" in run["executor"], run["executor"][-2000:]


def test_the_remote_backend_crosses_the_link(domain_id, tmp_path, two_hosts, tiny_checkpoint):
    """policy_node on the robot host, our policy server on the GPU host, the openpi protocol between them."""
    def policy(gpu_ns, gpu_address, envs, robot_ns):
        server = RosProcess("../../wall_oss_ros/tools/cli.py", "serve", str(tiny_checkpoint), "--host", gpu_address,
                            "--port", "8765", "--device", "cpu", domain_id=domain_id, netns=gpu_ns, env=envs[gpu_ns])
        deadline = time.monotonic() + 180  # loading the model on a busy machine: serving only once it answers
        line = ""
        while "serving" not in line:
            assert server.popen.poll() is None and time.monotonic() < deadline, f"no server: {server.stderr()}"
            if select.select([server.popen.stdout], [], [], 1.0)[0]:
                line = server.popen.stdout.readline()
        node = node_process("policy_node", domain_id, netns=robot_ns, env=envs[robot_ns], backend="openpi",
                            server_uri=f"ws://{gpu_address}:8765", server_timeout_s=10.0, instruction="insert the peg")
        return [node, server]

    run = _run(domain_id, tmp_path, two_hosts, policy)
    arm = [r for r in run["records"] if r["group"] == "left_arm"]
    moving = [r for r in arm if np.abs(r["velocities"]).max() > 1e-3]
    assert len(moving) > 20, f"no motion\npolicy:\n{run['others'][0][-1500:]}\nserver:\n{run['others'][1][-1500:]}"


def test_the_network_profile_names_only_the_addresses_given_and_refuses_bad_ones():
    import xml.etree.ElementTree as ET

    root = ET.fromstring(network_profile("10.0.0.1", ["10.0.0.2", "10.0.0.3"]))
    ns = {"d": "http://www.eprosima.com"}
    addresses = [a.text for a in root.iterfind(".//d:address", ns)]
    assert set(addresses) == {"10.0.0.1", "10.0.0.2", "10.0.0.3"} and "127.0.0.1" not in addresses
    assert root.find(".//d:useBuiltinTransports", ns).text == "false"
    assert [t.text for t in root.iterfind(".//d:transport_descriptor/d:type", ns)] == ["UDPv4"]  # no SHM
    for address, peers in (("10.0.0.1", []), ("host.local", ["10.0.0.2"]), ("10.0.0.1", ["10.0.0.300"])):
        with pytest.raises(ValueError):
            network_profile(address, peers)
