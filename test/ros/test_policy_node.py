"""policy_node in its own process: frames and joint states in, ActionChunks stamped with a frame's t_obs out."""

from __future__ import annotations

import time

import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState

from test.support.robots import contract, rest_state
from test.support.ros_process import node_process
from test.support.spin import spin_until
from wall_oss_ros.msg import ActionChunk
from wall_oss_ros.ros.conversions import sec_to_stamp, stamp_to_sec

pytestmark = [pytest.mark.ros, pytest.mark.slow]


class Robot:
    """The ALOHA contract's camera and joint states from the test process, and the chunks that come back."""

    def __init__(self, ros_node) -> None:
        self.node, self.c = ros_node, contract("aloha_bimanual")
        self.camera = ros_node.create_publisher(Image, "/camera/top/image_raw", qos_profile_sensor_data)
        self.joints = ros_node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
        self.chunks: list[ActionChunk] = []
        ros_node.create_subscription(ActionChunk, "/policy_node/action_chunk", self.chunks.append,
                                     QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE))
        self.rest = rest_state(self.c).joints
        self.rgb = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8).tobytes()
        self.published: list[float] = []

    def feed(self) -> None:
        """One frame and one joint state with the same stamp, then 1/30 s of spinning."""
        stamp = sec_to_stamp(time.time())
        frame = Image(height=480, width=640, encoding="rgb8", step=640 * 3, data=self.rgb)
        frame.header.stamp = stamp
        self.camera.publish(frame)
        state = JointState(name=list(self.rest), position=list(self.rest.values()))
        state.header.stamp = stamp
        self.joints.publish(state)
        self.published.append(stamp_to_sec(stamp))
        spin_until(self.node, lambda: False, 1 / 30)

    def feed_until(self, condition, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition() and time.monotonic() < deadline:
            self.feed()


@pytest.mark.parametrize("family", ["wall-oss-flow", "wall-oss-0.5"])
def test_chunks_carry_the_t_obs_of_the_frames_used(ros_node, domain_id, request, family):
    """Either family, with the same parameters (RTC and the Uni-CoT subtask on: without an executor's status
    there is nothing committed to inpaint); the node says which family it found."""
    checkpoint = request.getfixturevalue("tiny_checkpoint" if family == "wall-oss-flow" else "tiny_checkpoint_05")
    robot = Robot(ros_node)
    c, chunks, published = robot.c, robot.chunks, robot.published
    node = node_process("policy_node", domain_id, checkpoint=checkpoint, instruction="insert the peg",
                        device="cpu", rtc=True, subtask_max_tokens=2)
    try:
        robot.feed_until(lambda: len(chunks) >= 3)
    finally:
        node.stop()
    assert len(chunks) >= 3, f"no chunks; policy_node stderr:\n{node.stderr()[-2000:]}"
    for chunk in chunks:
        assert stamp_to_sec(chunk.header.stamp) in published  # t_obs: the stamp of a frame really used
        assert tuple(chunk.action_names) == c.action_names and (chunk.horizon, chunk.dim) == (32, 14)
        assert np.all(np.isfinite(chunk.values)) and chunk.denoising_steps == 10
    ids = [chunk.chunk_id for chunk in chunks]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert len({chunk.header.stamp.sec * 10**9 + chunk.header.stamp.nanosec for chunk in chunks}) == len(chunks)
    assert f"a {family} checkpoint (" in node.stderr()


def test_fast_mode_that_cannot_decode_publishes_no_chunk_and_says_why(ros_node, domain_id, tiny_checkpoint):
    """A random tiny model never answers with decodable FAST tokens: the node reports ERROR and publishes
    nothing (the reference decoder would have returned a zero chunk)."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    robot = Robot(ros_node)
    chunks, errors = robot.chunks, []
    node = node_process("policy_node", domain_id, checkpoint=tiny_checkpoint, instruction="insert the peg",
                        device="cpu", prediction_mode="fast", fast_max_tokens=8)
    ros_node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: errors.extend(
        s.message for s in m.status if s.level == DiagnosticStatus.ERROR and "inference failed" in s.message),
        QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE))
    try:
        robot.feed_until(lambda: len(errors) >= 3)
    finally:
        node.stop()
    assert len(errors) >= 3, f"no inference errors reported; policy_node stderr:\n{node.stderr()[-2000:]}"
    assert "no action tokens" in errors[0] and "token budget exhausted" in errors[0]
    assert chunks == []
    assert "fast mode" in node.stderr()


@pytest.mark.parametrize("signals", [1, 2], ids=["ctrl-c", "ctrl-c-twice"])
def test_ctrl_c_mid_inference_exits_cleanly_and_quickly(ros_node, domain_id, tiny_checkpoint, signals):
    """The worker used to be left inside torch at exit: 'terminate called without an active exception'."""
    import os
    import signal

    robot = Robot(ros_node)
    node = node_process("policy_node", domain_id, checkpoint=tiny_checkpoint, instruction="insert the peg",
                        device="cpu")
    try:
        robot.feed_until(lambda: len(robot.chunks) >= 2)
        assert len(robot.chunks) >= 2, f"no chunks; stderr:\n{node.stderr()[-2000:]}"
        robot.feed()  # a fresh frame: the worker is computing the next chunk now
        stopped = time.monotonic()
        for _ in range(signals):
            os.kill(node.pid, signal.SIGINT)
            time.sleep(0.05)
        code = node.wait(10.0)
        elapsed = time.monotonic() - stopped
    finally:
        node.stop()
    errors = node.stderr()
    assert code == 0, f"exit code {code}; stderr:\n{errors[-2000:]}"
    assert elapsed < 5.0  # inside launch's SIGINT grace period
    assert "terminate called" not in errors and "Traceback" not in errors, errors[-2000:]


def test_what_the_policy_waits_for_is_said_on_the_console(ros_node, domain_id, tiny_checkpoint):
    """No camera yet, then frames but no instruction: each said at INFO on the console (not only on
    /diagnostics), naming the topic or the parameter to set; no inference runs without an instruction."""
    robot = Robot(ros_node)
    node = node_process("policy_node", domain_id, checkpoint=tiny_checkpoint, device="cpu")
    log = ""
    try:
        deadline = time.monotonic() + 90
        while "waiting: waiting for cameras" not in log and time.monotonic() < deadline:
            spin_until(ros_node, lambda: False, 0.2)
            log += node.stderr()
        deadline = time.monotonic() + 60
        while "waiting: no instruction" not in log and time.monotonic() < deadline:
            robot.feed()
            log += node.stderr()
    finally:
        node.stop()
    log += node.stderr()
    assert "waiting: waiting for cameras ['top'] (topics ['/camera/top/image_raw'])" in log, log[-2000:]
    assert "waiting: no instruction: set the policy's instruction parameter" in log, log[-2000:]
    assert robot.chunks == [] and "inference failed" not in log


def test_a_remote_policy_server_makes_the_chunks_and_its_loss_stops_them(ros_node, domain_id, tiny_checkpoint):
    """backend openpi: chunks from our policy server (its round trip in diagnostics), stamped with the t_obs
    of the frames used as for the local backend; the server stopped, no chunk and an ERROR diagnostic that
    names it (the executor's chunk timeout then halts the robot, as for a dead local policy)."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    from wall_oss_ros.policy.remote.server import PolicyServer
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    server = PolicyServer(WallOssBackend(tiny_checkpoint, contract("aloha_bimanual"), device="cpu"), port=0)
    port = server.start()
    robot = Robot(ros_node)
    diagnostics: list[DiagnosticStatus] = []
    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    ros_node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diagnostics.extend(
        s for s in m.status if s.name == "wall_oss_ros: policy"), reliable)
    node = node_process("policy_node", domain_id, backend="openpi", server_uri=f"ws://127.0.0.1:{port}",
                        server_timeout_s=30.0, instruction="insert the peg")
    try:
        robot.feed_until(lambda: len(robot.chunks) >= 2)
        assert len(robot.chunks) >= 2, f"no chunks; policy_node stderr:\n{node.stderr()[-2000:]}"
        assert all(stamp_to_sec(chunk.header.stamp) in robot.published for chunk in robot.chunks)
        assert any(any(kv.key == "server_round_trip_s" for kv in s.values) for s in diagnostics)
        server.stop()
        count = len(robot.chunks)
        robot.feed_until(lambda: any(s.level == DiagnosticStatus.ERROR and f"127.0.0.1:{port}" in s.message
                                     for s in diagnostics), 30)
        robot.feed_until(lambda: False, 2.0)
        assert len(robot.chunks) <= count + 1  # at most the one in flight when the server went
        assert any(s.level == DiagnosticStatus.ERROR and f"127.0.0.1:{port}" in s.message for s in diagnostics), \
            [s.message for s in diagnostics[-3:]]
    finally:
        node.stop()
        server.stop()


class EeRobot(Robot):
    """The bimanual_ee contract's three compressed cameras (the front one a solid colour), both arms'
    measured poses and the grippers' joint states, each round with one stamp (feed_until as the ALOHA one's)."""

    def __init__(self, ros_node) -> None:  # Robot's own topics are not these: not called
        import cv2
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import CompressedImage

        self.node, self.c = ros_node, contract("bimanual_ee")
        self.cameras = {cam.name: ros_node.create_publisher(CompressedImage, cam.topic, qos_profile_sensor_data)
                        for cam in self.c.cameras}
        self.poses = {g.name: ros_node.create_publisher(PoseStamped, g.state_topic, qos_profile_sensor_data)
                      for g in self.c.groups if g.state_topic}
        self.joints = ros_node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
        self.chunks: list[ActionChunk] = []
        ros_node.create_subscription(ActionChunk, "/policy_node/action_chunk", self.chunks.append,
                                     QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE))
        front = np.empty((120, 160, 3), dtype=np.uint8)
        front[:] = (200, 60, 10)  # RGB
        rest = np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8)
        self.jpeg = {name: cv2.imencode(".jpg", cv2.cvtColor(front if name == "face_view" else rest,
                                                             cv2.COLOR_RGB2BGR))[1].tobytes()
                     for name in self.cameras}
        self.published: list[float] = []
        self.PoseStamped, self.CompressedImage = PoseStamped, CompressedImage

    def feed(self) -> None:
        stamp = sec_to_stamp(time.time())
        for name, pub in self.cameras.items():
            msg = self.CompressedImage(format="jpeg", data=self.jpeg[name])
            msg.header.stamp = stamp
            pub.publish(msg)
        for i, pub in enumerate(self.poses.values()):
            pose = self.PoseStamped()
            pose.header.stamp, pose.header.frame_id = stamp, "base_link"
            pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = 0.3, 0.2 - 0.4 * i, 0.4
            pose.pose.orientation.x, pose.pose.orientation.w = 1.0, 0.0  # pointing down
            pub.publish(pose)
        state = JointState(name=["left_gripper_joint", "right_gripper_joint"], position=[0.04, 0.02])
        state.header.stamp = stamp
        self.joints.publish(state)
        self.published.append(stamp_to_sec(stamp))
        spin_until(self.node, lambda: False, 1 / 30)


def test_a_wall_x_server_makes_the_chunks_and_a_wrong_setting_is_refused_at_configure(ros_node, domain_id):
    """backend wallx against the wall-x server stand-in: chunks stamped with the frames' t_obs, holding what
    the server's rows say (the front camera's colour as the model saw it: RGB); a missing schema or RTC on
    fail the node's configure with the reason."""
    from test.support.serving_standin import HORIZON, STEP_M, StandinPolicy, StandinServer

    server = StandinServer(StandinPolicy())
    port = server.start()
    robot = EeRobot(ros_node)
    node = node_process("policy_node", domain_id, contract="bimanual_ee", backend="wallx",
                        server_uri=f"ws://127.0.0.1:{port}", server_schema="wallx_bimanual_ee",
                        server_timeout_s=30.0, instruction="pick up the cup")
    try:
        robot.feed_until(lambda: len(robot.chunks) >= 2)
    finally:
        node.stop()
        server.stop()
    assert len(robot.chunks) >= 2, f"no chunks; policy_node stderr:\n{node.stderr()[-2000:]}"
    for chunk in robot.chunks:
        assert stamp_to_sec(chunk.header.stamp) in robot.published
        assert tuple(chunk.action_names) == robot.c.action_names and (chunk.horizon, chunk.dim) == (HORIZON, 20)
        first = np.asarray(chunk.values).reshape(chunk.horizon, chunk.dim)[0]
        np.testing.assert_allclose(first[:3], STEP_M * np.array([200, 60, 10]) / 255, atol=STEP_M * 4 / 255)
    for wrong, reason in (({}, "backend wallx needs server_schema"),
                          ({"server_schema": "wallx_bimanual_ee", "rtc": True}, "no real-time chunking"),
                          ({"server_schema": "wallx_bimanual_ee", "contract": "aloha_bimanual"},
                           "written for contract 'bimanual_ee'")):
        parameters = {"contract": "bimanual_ee", "backend": "wallx", "server_uri": "ws://127.0.0.1:9", **wrong}
        node = node_process("policy_node", domain_id, **parameters)
        log, deadline = "", time.monotonic() + 60
        while "configure failed" not in log and time.monotonic() < deadline:
            time.sleep(0.2)
            log += node.stderr()
        node.stop()
        assert "configure failed: " in log and reason in log, log[-1500:]
