"""~/run_policy over DDS, each node in its own process: a goal sends its instruction to a real policy_node
(which makes no chunk until it has one), the robot moves with feedback counting steps and chunks, the
duration ends it succeeded and a cancel ends it with a smooth halt measured at the robot; a newer goal
preempts (or is refused, as configured); a goal that makes no sense is refused."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from test.support.executor_run import assert_ramps
from test.support.robots import contract
from test.support.ros_process import RosProcess, node_process
from test.support.spin import spin_until
from wall_oss_ros.action import RunPolicy
from wall_oss_ros.msg import ExecutorStatus

pytestmark = [pytest.mark.ros, pytest.mark.slow]


class Client:
    """The action client in the test process, with every goal's feedback kept."""

    def __init__(self, ros_node) -> None:
        self.node = ros_node
        self.client = ActionClient(ros_node, RunPolicy, "/executor_node/run_policy")
        self.feedback: dict[int, list] = {}

    def send(self, instruction: str, duration_s: float = 0.0, speed_scale: float = 0.0):
        assert self.client.wait_for_server(timeout_sec=60), "no ~/run_policy server"
        key = len(self.feedback)
        self.feedback[key] = []
        future = self.client.send_goal_async(RunPolicy.Goal(instruction=instruction, duration_s=duration_s,
                                                            speed_scale=speed_scale),
                                             feedback_callback=lambda m: self.feedback[key].append(m.feedback))
        assert spin_until(self.node, future.done, 30), "no answer to the goal"
        return future.result(), self.feedback[key]

    def result(self, handle, timeout_s: float = 60.0):
        future = handle.get_result_async()
        assert spin_until(self.node, future.done, timeout_s), "the goal did not end"
        return future.result()


@pytest.fixture
def graph(ros_node, domain_id, tmp_path, tiny_checkpoint):
    """fake robot (camera) + policy_node without an instruction + executor_node not started."""
    out = tmp_path / "commands.json"
    robot = RosProcess("fake_robot.py", "--camera", "--duration-s", "120", "--out", str(out), domain_id=domain_id)
    policy = node_process("policy_node", domain_id, checkpoint=tiny_checkpoint, device="cpu")
    executor = node_process("executor_node", domain_id, chunk_timeout_s=2.0, max_chunk_age_s=2.0)
    instructions: list[str] = []
    statuses: list[ExecutorStatus] = []
    reliable = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
    ros_node.create_subscription(String, "/instruction", lambda m: instructions.append(m.data), reliable)
    ros_node.create_subscription(ExecutorStatus, "/executor_node/status", statuses.append, reliable)
    ready = spin_until(ros_node, lambda: any(i.node_name == "policy_node" for i in
                                             ros_node.get_subscriptions_info_by_topic("/instruction")), 180)
    assert ready, f"policy_node did not come up: {policy.stderr()[-1500:]}"  # its model loaded, it listens
    yield {"client": Client(ros_node), "instructions": instructions, "statuses": statuses, "out": out,
           "robot": robot, "processes": (robot, policy, executor), "policy": policy, "executor": executor}
    for p in (executor, policy, robot):
        p.stop()


def test_a_goal_runs_the_policy_for_its_duration_then_a_cancel_halts_smoothly(ros_node, graph):
    client, statuses = graph["client"], graph["statuses"]
    handle, feedback = client.send("insert the peg", duration_s=3.0)
    assert handle.accepted
    assert spin_until(ros_node, lambda: "insert the peg" in graph["instructions"], 10)
    result = client.result(handle, 120)
    assert result.status == GoalStatus.STATUS_SUCCEEDED and result.result.reason == RunPolicy.Result.END_DURATION, \
        (result.result.text, graph["executor"].stderr()[-1500:])
    assert result.result.chunks_accepted > 0, f"no chunk: {graph['policy'].stderr()[-1500:]}"  # it reached the policy
    assert result.result.steps_executed > 0 and result.result.elapsed_s >= 3.0
    assert feedback, "no feedback"
    progress = [f.progress for f in feedback]
    assert progress == sorted(progress) and progress[0] >= 0.0 and progress[-1] <= 1.0
    assert max(f.steps_executed for f in feedback) <= result.result.steps_executed
    assert all(f.steps_total == round(3.0 / contract("aloha_bimanual").dt_s) for f in feedback)
    assert spin_until(ros_node, lambda: graph["instructions"][-1:] == [""], 10)  # the task is over for the policy
    assert spin_until(ros_node, lambda: statuses[-1].state == ExecutorStatus.STATE_PAUSED, 5)

    handle, feedback = client.send("insert the peg")  # open-ended, until cancelled
    assert spin_until(ros_node, lambda: any(f.steps_executed > 20 for f in feedback), 120), \
        f"not moving: {graph['executor'].stderr()[-1500:]}"
    assert all(f.progress == -1.0 and f.steps_total == 0 for f in feedback)
    cancelled_at = time.time()
    cancel = handle.cancel_goal_async()
    assert spin_until(ros_node, cancel.done, 10)
    result = client.result(handle)
    assert result.status == GoalStatus.STATUS_CANCELED and result.result.reason == RunPolicy.Result.END_CANCELED
    spin_until(ros_node, lambda: False, 1.0)  # a busy robot process may still be reading the last commands
    graph["robot"].stop()  # writes what it was commanded
    records = [r for r in json.loads(graph["out"].read_text()) if r["group"] == "left_arm"]
    after = [r for r in records if r["stamp"] > cancelled_at - 0.05]
    assert len(after) > 2, "no commands after the cancel"
    assert np.abs(after[-1]["velocities"]).max() < 1e-9  # halted
    assert_ramps(np.array([r["velocities"] for r in after]), np.array([r["stamp"] for r in after]),
                 contract("aloha_bimanual").group("left_arm").limits[0].acceleration_max)  # within the limits


def test_a_newer_goal_preempts_the_running_one_and_a_senseless_goal_is_refused(ros_node, graph):
    client = graph["client"]
    first, _ = client.send("insert the peg")
    assert first.accepted
    second, feedback = client.send("lift the peg", speed_scale=0.5)
    assert second.accepted
    result = client.result(first)
    assert result.status == GoalStatus.STATUS_ABORTED and result.result.reason == RunPolicy.Result.END_PREEMPTED
    assert spin_until(ros_node, lambda: "lift the peg" in graph["instructions"] and bool(feedback), 30)
    assert spin_until(ros_node, lambda: graph["statuses"][-1].state in (ExecutorStatus.STATE_RUNNING,
                                                                         ExecutorStatus.STATE_HOLDING), 10)
    for bad in (RunPolicy.Goal(instruction=""), RunPolicy.Goal(instruction="x", duration_s=-1.0),
                RunPolicy.Goal(instruction="x", speed_scale=1.5)):
        handle, _ = client.send(bad.instruction, bad.duration_s, bad.speed_scale)
        assert not handle.accepted
    cancel = second.cancel_goal_async()
    assert spin_until(ros_node, cancel.done, 10)
    assert client.result(second).result.reason == RunPolicy.Result.END_CANCELED


def test_with_preemption_off_a_second_goal_is_refused(ros_node, domain_id):
    executor = node_process("executor_node", domain_id, run_policy_preempt=False)
    try:
        client = Client(ros_node)
        first, _ = client.send("insert the peg")
        second, _ = client.send("lift the peg")
        assert first.accepted and not second.accepted
        log, deadline = "", time.monotonic() + 10
        while "a goal is running and run_policy_preempt is false" not in log and time.monotonic() < deadline:
            spin_until(ros_node, lambda: False, 0.2)
            log += executor.stderr()
        assert "run_policy goal refused: a goal is running and run_policy_preempt is false" in log, log[-1500:]
        cancel = first.cancel_goal_async()
        assert spin_until(ros_node, cancel.done, 10)
    finally:
        executor.stop()
