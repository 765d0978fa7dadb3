"""bag_replay in its own process: recorded timing (scaled by the rate), /clock from the bag, topic filters."""

from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory

from test.support.bags import RECEIVE_DELAY_S, T0, bag_path, write_test_bag
from test.support.robots import contract
from test.support.ros_process import RosProcess
from test.support.spin import spin_until
from wall_oss_ros.core.contract.topics import robot_topics
from wall_oss_ros.ros.conversions import stamp_to_sec

pytestmark = [pytest.mark.ros, pytest.mark.slow]
ROBOT = (*robot_topics("aloha_bimanual"), "/instruction")


@pytest.mark.parametrize("storage", ["sqlite3", "mcap_ros2"])
def test_replays_the_robot_side_only_at_the_recorded_timing_with_clock(ros_node, domain_id, tmp_path, storage):
    """A whole run's bag (rosbags' sqlite3, or a bare .mcap from mcap-ros2-support, which records no QoS): the
    robot's topics and /instruction are replayed; the recorded commands, status and diagnostics (what the live
    graph publishes itself) never are — with no list of exclusions to keep."""
    c = contract("aloha_bimanual")
    bag = bag_path(tmp_path, storage)
    info = write_test_bag(bag, storage, duration_s=2.0, commands=True, graph_outputs=True)
    commands = [g.output.topic for g in c.groups]
    reliable = QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE)
    states: list[tuple[float, JointState]] = []
    frames: list[Image] = []
    clock: list[float] = []
    leaked: list[str] = []
    ros_node.create_subscription(JointState, "/joint_states", lambda m: states.append((time.monotonic(), m)), reliable)
    ros_node.create_subscription(Image, info["camera_topic"], frames.append, reliable)
    ros_node.create_subscription(Clock, "/clock", lambda m: clock.append(stamp_to_sec(m.clock)), reliable)
    for topic in commands:
        ros_node.create_subscription(JointTrajectory, topic, lambda m, t=topic: leaked.append(t), reliable)
    ros_node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: leaked.append("/diagnostics"), reliable)
    ros_node.create_subscription(Bool, "/estop", lambda m: leaked.append("/estop"), reliable)
    # No head start for our readers: the replay waits until each of its topics has a matched subscriber.
    replay = RosProcess("../../wall_oss_ros/ros/bag_replay.py", "--ros-args", "-p", f"bag:={bag}", "-p", "rate:=2.0",
                        domain_id=domain_id)
    try:
        end = T0 + 1.99 + RECEIVE_DELAY_S - 0.02  # the clock of the last state's arrival in the recording
        spin_until(ros_node, lambda: len(states) >= 200 and len(frames) >= info["frames"] and bool(clock)
                   and clock[-1] >= end, 60)  # spinning: timing
        summary = replay.read_json_line(timeout_s=30)
    finally:
        replay.stop()
    assert summary["published"] == info["events"] - len(commands) * 200 - 2 * 20  # the robot's side only
    assert not leaked, f"the graph's own topics were replayed: {sorted(set(leaked))}"
    assert len(states) == 200 and len(frames) == info["frames"]
    stamps = np.array([stamp_to_sec(m.header.stamp) for _, m in states])
    np.testing.assert_allclose(stamps, T0 + 0.01 * np.arange(200), atol=1e-9)  # headers as recorded
    # Paced at rate 2: each state's arrival against its recorded time / 2. Lateness relative to the least late
    # one is what a busy machine adds to a few messages; played at rate 1 (or as fast as possible) half of them
    # would be 0.25 s late (or early) and more.
    arrivals = np.array([t for t, _ in states])
    lateness = arrivals - (stamps - stamps[0]) / 2.0
    assert np.median(lateness) - lateness.min() < 0.2, "the replay does not keep rate 2"
    clock_arr = np.array(clock)
    assert np.all(np.diff(clock_arr) >= 0), "the replay clock went backwards"
    assert clock_arr[0] >= T0 - 1e-9 and clock_arr[-1] == pytest.approx(stamps[-1] + RECEIVE_DELAY_S, abs=0.02)


def test_replay_names_the_topics_nobody_subscribes_to(ros_node, tmp_path):
    from wall_oss_ros.ros.bag_replay import BagReplayer

    bag = tmp_path / "bag"
    info = write_test_bag(bag, "mcap", duration_s=0.1)
    ros_node.create_subscription(JointState, "/joint_states", lambda m: None, 10)
    replayer = BagReplayer(ros_node, bag, ROBOT, wait_for_subscribers_s=0.5)
    try:
        start = time.monotonic()
        unmatched = replayer.wait_for_subscribers()
        waited = time.monotonic() - start
    finally:
        replayer.close()
    assert unmatched == sorted([info["camera_topic"], "/instruction"])  # /joint_states has our reader
    assert waited >= 0.5


def damaged_bag(tmp_path, damage: str):
    bag = tmp_path / "bag"
    write_test_bag(bag, "mcap", duration_s=0.5)
    (mcap,) = bag.glob("*.mcap")
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 1000)
    return bag


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_bag_ends_the_replay_with_one_line_and_an_error_code(domain_id, tmp_path, damage):
    bag = damaged_bag(tmp_path, damage)
    replay = RosProcess("../../wall_oss_ros/ros/bag_replay.py", "--ros-args", "-p", f"bag:={bag}",
                        domain_id=domain_id)
    code = replay.wait(timeout_s=60)
    log = replay.stderr()
    assert code == 2, log[-2000:]
    assert "Traceback" not in log and f"cannot replay: {bag}: not a readable rosbag2" in log, log[-2000:]


def test_bringup_ends_with_the_replay_and_says_why(domain_id, tmp_path):
    """A replay that reaches the bag's end finishes the graph with exit 0; a damaged bag with exit 1."""
    import subprocess

    from wall_oss_ros.ros.dds import ros_environment

    good = tmp_path / "good"
    write_test_bag(good, "mcap", duration_s=0.5)
    (tmp_path / "d").mkdir()
    outcomes = {}
    for name, bag in (("good", good), ("damaged", damaged_bag(tmp_path / "d", "truncate"))):
        graph = tmp_path / f"{name}.yaml"
        graph.write_text("use_sim_time: true\nnodes:\n  - executable: bag_replay\n"
                         f"    parameters: {{bag: '{bag}', use_sim_time: false, wait_for_subscribers_s: 0.0}}\n"
                         "  - executable: executor_node\n    parameters: {contract: aloha_bimanual, dry_run: true}\n")
        done = subprocess.run(["wall-oss-ros", "bringup", str(graph)], env=ros_environment(domain_id=domain_id),
                              capture_output=True, text=True, timeout=120)
        outcomes[name] = (done.returncode, done.stdout + done.stderr)
    assert outcomes["good"][0] == 0 and "bag_replay finished: stopping the graph" in outcomes["good"][1]
    assert outcomes["damaged"][0] == 1 and "bag_replay exited with code 2" in outcomes["damaged"][1]
    assert "not a readable rosbag2" in outcomes["damaged"][1]


def test_a_live_publisher_on_a_replayed_topic_ends_the_replay(ros_node, domain_id, tmp_path):
    """A robot (or its driver) still running: its joint states would mix with the recorded ones."""
    bag = tmp_path / "bag"
    write_test_bag(bag, "mcap", duration_s=5.0)
    live = ros_node.create_publisher(JointState, "/joint_states", 10)
    replay = RosProcess("../../wall_oss_ros/ros/bag_replay.py", "--ros-args", "-p", f"bag:={bag}", "-p",
                        "wait_for_subscribers_s:=0.0", domain_id=domain_id)
    try:
        deadline = time.monotonic() + 60
        while replay.popen.poll() is None and time.monotonic() < deadline:
            live.publish(JointState())
            spin_until(ros_node, lambda: False, 0.1)
        code = replay.wait(timeout_s=5)
    finally:
        replay.stop()
    log = replay.stderr()
    assert code == 2, log[-2000:]
    assert "another node publishes ['/joint_states']" in log and "Traceback" not in log, log[-2000:]
