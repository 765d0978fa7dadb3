"""executor_node in its own process over real DDS: a command per control tick within limits, e-stop halts."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool

from test.support.robots import contract, rest_action
from test.support.ros_process import RosProcess
from test.support.spin import spin_until
from wall_oss_ros.msg import ActionChunk, ExecutorStatus
from wall_oss_ros.policy.backend import ChunkResult
from wall_oss_ros.ros.conversions import chunk_to_msg

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def sine_chunk(c, t_obs: float) -> np.ndarray:
    t = t_obs + c.dt_s * np.arange(32)
    return rest_action(c) + 0.25 * np.sin(2 * np.pi * 0.5 * t)[:, None]


def test_commands_flow_within_limits_and_estop_halts(ros_node, domain_id, tmp_path):
    c = contract("aloha_bimanual")
    out = tmp_path / "commands.json"
    robot = RosProcess("fake_robot.py", "--duration-s", "9", "--out", str(out), domain_id=domain_id)
    node = RosProcess("../../wall_oss_ros/ros/executor_node.py", "--activate", "--ros-args", "-p",
                      "contract:=aloha_bimanual", "-p", "autostart:=true", "-p", "chunk_timeout_s:=3.0",
                      domain_id=domain_id)
    reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
    chunks = ros_node.create_publisher(ActionChunk, "/policy_node/action_chunk", reliable)
    estop = ros_node.create_publisher(Bool, "/estop", reliable)
    statuses: list[ExecutorStatus] = []
    arrivals: list[float] = []  # when each status came [s, wall clock, as the robot's records]

    def on_status(msg: ExecutorStatus) -> None:
        statuses.append(msg)
        arrivals.append(time.time())

    ros_node.create_subscription(ExecutorStatus, "/executor_node/status", on_status, reliable)
    try:
        robot.read_json_line(timeout_s=30)
        assert spin_until(ros_node, lambda: chunks.get_subscription_count() > 0 and len(statuses) > 0, 30), \
            f"executor_node did not come up: {node.stderr()}"
        run_start = time.time()
        chunk_id = 0
        while time.time() - run_start < 3.0:  # a chunk every 0.2 s from an observation 50 ms old
            t_obs = time.time() - 0.05
            result = ChunkResult(sine_chunk(c, t_obs), c.action_names, c.dt_s, (), np.zeros(0), t_obs, t_obs, 10)
            chunks.publish(chunk_to_msg(result, chunk_id, t_obs))
            chunk_id += 1
            spin_until(ros_node, lambda: False, 0.2)
        estop_time = time.time()
        estop.publish(Bool(data=True))
        spin_until(ros_node, lambda: statuses[-1].state == ExecutorStatus.STATE_ESTOP, 5)
        spin_until(ros_node, lambda: False, 1.5)
        assert statuses[-1].state == ExecutorStatus.STATE_ESTOP
        assert robot.wait(timeout_s=30) == 0
    finally:
        node.stop()
        robot.stop()
    records = [r for r in json.loads(out.read_text()) if r["group"] == "left_arm"]
    times = np.array([r["t"] for r in records])
    positions = np.array([r["positions"] for r in records])
    velocities = np.array([r["velocities"] for r in records])
    running = (times > run_start + 0.5) & (times < estop_time)
    # One command per control tick reaches the robot: between two statuses, as many as the ticks they count
    # (the two paths' delivery delays differ a little at either end; a busy machine ticks slower, not fewer).
    arrived = np.array(arrivals)
    a = int(np.argmax(arrived > run_start + 0.5))
    b = int(np.nonzero(arrived < estop_time)[0][-1])
    ticks = statuses[b].ticks - statuses[a].ticks
    received = np.count_nonzero((times > arrived[a]) & (times <= arrived[b]))
    assert ticks >= 20 and abs(received - ticks) <= 5 + 0.1 * ticks, (received, ticks)
    arm = c.group("left_arm")
    lo, hi = np.array([x.position_min for x in arm.limits]), np.array([x.position_max for x in arm.limits])
    assert np.all(np.isfinite(positions)) and np.all(positions >= lo) and np.all(positions <= hi)
    assert np.abs(velocities[running]).max() > 0.1  # it really moved
    after = times > estop_time + 0.8  # the stop takes at most ~0.5 s within the arm's limits
    assert np.count_nonzero(after) > 0 and np.abs(velocities[after]).max() == 0.0
    assert np.ptp(positions[after], axis=0).max() == 0.0  # holding


def test_speed_scale_is_set_at_runtime_through_the_parameter_service(ros_node, domain_id, tmp_path):
    """ros2 param set /executor_node speed_scale 0.4: accepted, reported in ExecutorStatus, and the committed
    steps come dt/0.4 apart; a value outside (0, 1] is refused with the reason and changes nothing."""
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    c = contract("aloha_bimanual")
    robot = RosProcess("fake_robot.py", "--duration-s", "20", "--out", str(tmp_path / "commands.json"),
                       domain_id=domain_id)
    node = RosProcess("../../wall_oss_ros/ros/executor_node.py", "--activate", "--ros-args", "-p",
                      "contract:=aloha_bimanual", "-p", "autostart:=true", "-p", "chunk_timeout_s:=5.0",
                      domain_id=domain_id)
    reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
    chunks = ros_node.create_publisher(ActionChunk, "/policy_node/action_chunk", reliable)
    statuses: list[ExecutorStatus] = []
    ros_node.create_subscription(ExecutorStatus, "/executor_node/status", statuses.append, reliable)
    client = ros_node.create_client(SetParameters, "/executor_node/set_parameters")

    def set_scale(value: float) -> object:
        request = SetParameters.Request(parameters=[Parameter(name="speed_scale", value=ParameterValue(
            type=ParameterType.PARAMETER_DOUBLE, double_value=value))])
        future = client.call_async(request)
        assert spin_until(ros_node, future.done, 10), "no answer from the parameter service"
        return future.result().results[0]

    try:
        robot.read_json_line(timeout_s=30)
        assert spin_until(ros_node, lambda: client.service_is_ready() and len(statuses) > 0, 30), \
            f"executor_node did not come up: {node.stderr()}"
        assert statuses[-1].speed_scale == 1.0
        assert set_scale(0.4).successful
        count = len(statuses)
        assert spin_until(ros_node, lambda: len(statuses) > count + 2 and statuses[-1].speed_scale == 0.4, 10)
        assert spin_until(ros_node, lambda: statuses[-1].plan_rate == 0.4, 10)  # ramped down at 1 /s
        refused = set_scale(1.5)
        assert not refused.successful and "speed_scale" in refused.reason
        t_obs = time.time() - 0.05
        result = ChunkResult(sine_chunk(c, t_obs), c.action_names, c.dt_s, (), np.zeros(0), t_obs, t_obs, 10)
        chunks.publish(chunk_to_msg(result, 0, t_obs))
        assert spin_until(ros_node, lambda: statuses[-1].committed_steps > 0, 10), node.stderr()
        last = statuses[-1]
        assert last.speed_scale == 0.4 and last.committed_dt_s == pytest.approx(c.dt_s / 0.4)
        assert 0.0 < last.plan_rate <= 1.0 and last.ticks > 0
    finally:
        node.stop()
        robot.stop()
