"""executor_node in its own process, driven through its lifecycle and services; horizon mode and plan markers."""

from __future__ import annotations

import itertools
import json
import os
import time

import numpy as np
import pytest
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_srvs.srv import SetBool, Trigger
from visualization_msgs.msg import Marker, MarkerArray

from test.support.robots import contract, rest_action
from test.support.ros_process import RosProcess
from test.support.services import Services
from test.support.spin import spin_until
from wall_oss_ros.msg import ActionChunk, ExecutorStatus
from wall_oss_ros.policy.backend import ChunkResult
from wall_oss_ros.ros.conversions import chunk_to_msg

pytestmark = [pytest.mark.ros, pytest.mark.slow]
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class Driver:
    """The test's side of the graph: publishes chunks, calls services, collects status and markers."""

    def __init__(self, node, name: str = "executor_node") -> None:
        self.node, self.name, self.c = node, name, contract("aloha_bimanual")
        self.chunks = node.create_publisher(ActionChunk, "/policy_node/action_chunk", RELIABLE)
        self.statuses: list[ExecutorStatus] = []
        self.markers: list[MarkerArray] = []
        node.create_subscription(ExecutorStatus, f"/{name}/status", self.statuses.append, RELIABLE)
        node.create_subscription(MarkerArray, f"/{name}/plan_markers", self.markers.append, RELIABLE)
        self.chunk_id = 0
        self.services = Services(node)

    def transition(self, transition_id: int) -> None:
        response = self.services.call(ChangeState, f"/{self.name}/change_state",
                        ChangeState.Request(transition=Transition(id=transition_id)))
        assert response.success, f"transition {transition_id} refused"

    def lifecycle_state(self) -> str:
        return self.services.call(GetState, f"/{self.name}/get_state", GetState.Request()).current_state.label

    def trigger(self, service: str) -> Trigger.Response:
        return self.services.call(Trigger, f"/{self.name}/{service}", Trigger.Request())

    def pause(self, paused: bool) -> SetBool.Response:
        return self.services.call(SetBool, f"/{self.name}/pause", SetBool.Request(data=paused))

    def stream(self, seconds: float, amplitude: float = 0.25) -> None:
        """A chunk every 0.2 s from an observation 50 ms old, following a 0.5 Hz sine."""
        end = time.time() + seconds
        while time.time() < end:
            t_obs = time.time() - 0.05
            t = t_obs + self.c.dt_s * np.arange(32)
            values = rest_action(self.c) + amplitude * np.sin(2 * np.pi * 0.5 * t)[:, None]
            result = ChunkResult(values, self.c.action_names, self.c.dt_s, (), np.zeros(0), t_obs, t_obs, 10)
            self.chunks.publish(chunk_to_msg(result, self.chunk_id, t_obs))
            self.chunk_id += 1
            spin_until(self.node, lambda: False, 0.2)

    def idle(self, seconds: float) -> None:
        spin_until(self.node, lambda: False, seconds)


def left_arm(path) -> tuple[np.ndarray, list[dict]]:
    records = [r for r in json.loads(path.read_text()) if r["group"] == "left_arm"]
    return np.array([r["t"] for r in records]), records


def test_lifecycle_transitions_and_pause_resume(ros_node, domain_id, tmp_path):
    out = tmp_path / "commands.json"
    robot = RosProcess("fake_robot.py", "--duration-s", "40", "--out", str(out), domain_id=domain_id)
    node = RosProcess("../../wall_oss_ros/ros/executor_node.py", "--ros-args", "-p", "chunk_timeout_s:=3.0",
                      domain_id=domain_id)
    d = Driver(ros_node)
    marks: dict[str, float] = {}
    try:
        robot.read_json_line(timeout_s=30)
        assert d.lifecycle_state() == "unconfigured"
        d.transition(Transition.TRANSITION_CONFIGURE)
        assert d.lifecycle_state() == "inactive"
        d.transition(Transition.TRANSITION_ACTIVATE)
        assert d.lifecycle_state() == "active"
        assert d.trigger("start").success
        marks["started"] = time.time()
        d.stream(2.5)
        assert d.pause(True).success
        marks["paused"] = time.time()
        d.stream(1.5)  # chunks while paused are accepted but not executed
        assert d.statuses[-1].state == ExecutorStatus.STATE_PAUSED
        assert d.pause(False).success
        marks["resumed"] = time.time()
        d.stream(2.5)
        d.transition(Transition.TRANSITION_DEACTIVATE)
        marks["deactivated"] = time.time()
        assert d.lifecycle_state() == "inactive"
        d.idle(1.5)
        marks["activating"] = time.time()  # from here the executor may publish again (paused: holding)
        d.transition(Transition.TRANSITION_ACTIVATE)
        assert d.pause(False).success  # deactivation paused the executor: resume to run again
        marks["reactivated"] = time.time()
        d.stream(2.0)
        d.transition(Transition.TRANSITION_DEACTIVATE)
        d.transition(Transition.TRANSITION_CLEANUP)
        assert d.lifecycle_state() == "unconfigured"
        marks["cleaned_up"] = time.time()
        d.idle(1.0)
    finally:
        node.stop()
        robot.stop()
    times, records = left_arm(out)
    v = np.abs(np.array([r["velocities"] for r in records])).max(axis=1)
    p = np.array([r["positions"] for r in records])

    def window(a: float, b: float) -> np.ndarray:
        return (times > a) & (times < b)

    assert v[window(marks["started"] + 0.5, marks["paused"])].max() > 0.1  # running: moving
    held = window(marks["paused"] + 0.8, marks["resumed"])  # paused: decelerated within ~0.5 s, holding
    assert np.count_nonzero(held) > 30 and v[held].max() == 0.0 and np.ptp(p[held], axis=0).max() == 0.0
    assert v[window(marks["resumed"] + 0.8, marks["deactivated"])].max() > 0.1  # resumed: moving again
    halting = window(marks["deactivated"], marks["reactivated"])
    assert np.count_nonzero(halting) > 0, "deactivation must halt smoothly, not cut the command stream"
    inactive = [r for r, inside in zip(records, window(marks["deactivated"], marks["activating"]), strict=True)
                if inside]
    standstill = [np.abs(np.array(r["all_velocities"][1:])).max() <= 1e-9 for r in inactive]
    assert any(standstill), "deactivation must end in a standstill"
    assert standstill.index(True) == len(inactive) - 1  # the standstill is the last message: the controllers hold
    assert v[window(marks["reactivated"] + 0.8, marks["cleaned_up"])].max() > 0.1  # active again: moving
    assert not window(marks["cleaned_up"] + 0.5, np.inf).any()
    # Per tick, the command state (point 0 of each path, at the path's stamp) changes by at most a·period.
    dv = np.abs(np.diff(np.array([r["all_velocities"][0] for r in records]), axis=0)).max(axis=1)
    dt = np.diff([r["stamp"] for r in records])
    amax = d.c.group("left_arm").limits[0].acceleration_max
    assert dt.size > 0 and np.all(dt > 0)
    assert np.all(dv <= amax * np.maximum(dt, 0.01) * 1.01), "a velocity step larger than the ticks' acceleration"


def test_horizon_mode_and_plan_markers(ros_node, domain_id, tmp_path):
    out = tmp_path / "commands.json"
    robot = RosProcess("fake_robot.py", "--duration-s", "12", "--out", str(out), domain_id=domain_id)
    node = RosProcess("../../wall_oss_ros/ros/executor_node.py", "--activate", "--ros-args", "-p",
                      "autostart:=true", "-p", "jtc_mode:=horizon", "-p", "horizon_points:=6", "-p",
                      "chunk_timeout_s:=3.0", "-p", "frame_id:=world", domain_id=domain_id)
    d = Driver(ros_node)
    try:
        robot.read_json_line(timeout_s=30)
        assert spin_until(ros_node, lambda: d.chunks.get_subscription_count() > 0 and d.statuses, 30), \
            f"executor_node did not come up: {node.stderr()}"
        d.stream(3.0, amplitude=0.4)
    finally:
        node.stop()
        robot.stop()
    _, records = left_arm(out)
    moving = [r for r in records if max(abs(x) for x in r["velocities"]) > 0.05]
    assert len(moving) > 30  # of ~300 ticks streamed (fewer reach the robot while the machine is busy)
    period = 0.01
    arm = d.c.group("left_arm")
    lo, hi = np.array([x.position_min for x in arm.limits]), np.array([x.position_max for x in arm.limits])
    vmax = arm.limits[0].velocity_max
    for r in moving:
        # point 0 (now), 6 planned commands, then a stop to rest (none where the planned commands already
        # brake to rest: the stream ran out on a busy machine); the last point at rest is checked below
        assert r["points"] >= 7
        np.testing.assert_allclose(r["times"], period * np.arange(r["points"]), atol=1e-9)
        pts = np.array(r["all_positions"])
        assert np.all(pts >= lo) and np.all(pts <= hi)
        assert np.abs(np.diff(pts, axis=0)).max() <= vmax * period * (1 + 1e-6)  # within the velocity limit
    # What a stock Jazzy/Kilted controller accepts by default and runs without a step: stamped with the tick's
    # time (point 0 due on arrival, so it samples inside the path), the last point at rest.
    assert all(r["stamp"] > 0.0 for r in moving)
    assert all(v == 0.0 for r in moving for v in r["last_velocities"])
    # Consecutive paths join: a message starts at the state the previous one planned for its stamp (one tick
    # later normally, more when the executor was starved).
    for a, b in itertools.pairwise(records):
        k = round((b["stamp"] - a["stamp"]) / period)
        assert k >= 1
        np.testing.assert_allclose(b["all_positions"][0], a["all_positions"][min(k, a["points"] - 1)], atol=1e-9)

    running = [m for m in d.markers if any(x.type == Marker.LINE_STRIP and len(x.points) > 5 for x in m.markers)]
    assert running, "no plan markers with a path while running"
    last = running[-1]
    assert {x.ns for x in last.markers} == {"left_arm", "right_arm"}
    for marker in last.markers:
        assert marker.header.frame_id == "world"
        points = [(q.x, q.y, q.z) for q in marker.points] or [(marker.pose.position.x, marker.pose.position.y,
                                                               marker.pose.position.z)]
        xyz = np.array(points)
        assert np.all(np.isfinite(xyz)) and np.all(np.abs(xyz) < 2.0)  # tips within reach of the robot


def console_until(node: RosProcess, text: str, timeout_s: float = 20.0) -> str:
    """The node's console output until it contains text (or the timeout)."""
    deadline, log = time.monotonic() + timeout_s, ""
    while time.monotonic() < deadline and text not in log:
        time.sleep(0.2)
        log += node.stderr()
    return log


def test_sim_time_without_a_clock_is_said_on_the_console(domain_id):
    """use_sim_time on a robot (nothing publishes /clock): the node's time stands still; it must say so."""
    node = RosProcess("../../wall_oss_ros/ros/executor_node.py", "--activate", "--ros-args", "-p",
                      "use_sim_time:=true", domain_id=domain_id)
    try:
        log = console_until(node, "nothing publishes /clock")
    finally:
        node.stop()
    assert "use_sim_time is true but nothing publishes /clock" in log, log[-2000:]


def test_no_robot_is_said_on_the_console(domain_id):
    """A robot launch with no robot running: IDLE, and the console says the joint states are missing."""
    node = RosProcess("../../wall_oss_ros/ros/executor_node.py", "--activate", domain_id=domain_id)
    try:
        log = console_until(node, "waiting: no joint states received")
    finally:
        node.stop()
    assert "waiting: no joint states received (topics ['/joint_states'])" in log, log[-2000:]


def test_realtime_scheduling_reaches_every_thread_or_is_refused_with_the_fix(domain_id):
    """realtime_priority / cpu_affinity: applied to every thread of the process (DDS's included), or, where
    the process may not raise its priority, a console error that says how, and normal scheduling."""
    node = RosProcess("../../wall_oss_ros/ros/executor_node.py", "--activate", "--ros-args", "-p",
                      "realtime_priority:=5", "-p", "cpu_affinity:=0", domain_id=domain_id)
    try:
        log = console_until(node, "scheduling:")
        threads = [int(t) for t in os.listdir(f"/proc/{node.pid}/task")]
        policies = {os.sched_getscheduler(t) for t in threads}
        cpus = {frozenset(os.sched_getaffinity(t)) for t in threads}
    finally:
        node.stop()
    assert "scheduling:" in log, log[-2000:]
    assert len(threads) > 1 and cpus == {frozenset({0})}
    if "not permitted" in log:
        assert "CAP_SYS_NICE" in log and policies == {os.SCHED_OTHER}, log[-2000:]
    else:
        assert "SCHED_FIFO priority 5 on" in log, log[-2000:]
        assert policies == {os.SCHED_FIFO}, log[-2000:]
