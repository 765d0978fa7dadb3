"""policy_node: synchronised observations → WALL-OSS on the GPU (worker thread) → ActionChunk stamped t_obs.

Lifecycle: configure loads the checkpoint and warms it up; activate starts the worker. Callbacks only
store messages; the worker takes the newest synchronised observation (superseded ones are dropped),
runs one inference at a time and publishes ~/action_chunk (header.stamp = t_obs, the newest camera stamp),
~/subtask and inference timing in /diagnostics. Trigger modes: `continuous` (next inference as soon as
one ends) or `on_demand` (when the executor's status says it wants a chunk).
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String

from wall_oss_ros.core.contract import CameraTransport, resolve_contract
from wall_oss_ros.core.observation import NO_NEW_OBSERVATION, ObservationAssembler, joint_state_problem
from wall_oss_ros.msg import ActionChunk, ExecutorStatus
from wall_oss_ros.policy.backend import Observation, RtcRequest
from wall_oss_ros.ros.conversions import (
    ConversionError,
    chunk_to_msg,
    image_to_rgb,
    pose_from_msg,
    stamp_to_sec,
)
from wall_oss_ros.ros.lifecycle_support import WallOssLifecycleNode, run
from wall_oss_ros.ros.parameters import Param, declare

# Best effort like every camera driver, but a second of frames deep: while the worker holds the
# interpreter for an inference, frames queue here instead of being overwritten.
CAMERA_QOS = QoSProfile(depth=30, reliability=ReliabilityPolicy.BEST_EFFORT)
# Joint states are matched to frames by stamp, so none may be lost while an inference holds the
# interpreter: a second of them at 100 Hz queues here.
STATE_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
OBSERVATION_STATUS = "wall_oss_ros: observation"  # diagnostic status name of the observation stage
WAITING_NEWS_S = 1.0  # a reason to wait is said on the console once it has lasted this long [s, wall]
NO_INSTRUCTION = ("no instruction: set the policy's instruction parameter (launch: instruction:=\"...\") or "
                  "publish a std_msgs/String on /instruction")

REMOTE_BACKENDS = ("openpi", "wallx")  # policies on a server, over a websocket

PARAMS = (
    Param("contract", "aloha_bimanual", "robot contract: a name under config/robots/ or a YAML path"),
    Param("backend", "local", "local (the checkpoint on this machine's torch) | openpi (a policy server at "
          "server_uri speaking openpi's websocket protocol, e.g. wall-oss-ros serve on a GPU box) | wallx (the "
          "wall-x 1.1.0 server, its fields mapped by server_schema)"),
    Param("checkpoint", "", "WALL-OSS checkpoint directory (transformers, lerobot or upstream layout); backend local"),
    Param("server_uri", "", "backend openpi / wallx: ws://host:port of the policy server"),
    Param("server_schema", "", "backend wallx: what the server's fields mean in the contract, a name under "
          "config/servers/ (e.g. wallx_bimanual_ee) or a YAML path"),
    Param("server_api_key_env", "", "backend openpi: environment variable holding the server's API key; empty: none"),
    Param("server_timeout_s", 5.0, "backend openpi / wallx: the longest one chunk's round trip may take [s]"),
    Param("device", "", "torch device; empty: cuda when available, else cpu"),
    Param("cpu_threads", 0, "torch intra-op CPU threads; 0: torch's default (every core)"),
    Param("dtype", "", "bfloat16 | float32; empty: bfloat16 on CUDA, float32 on CPU (layer norms and the action "
          "head stay float32)"),
    Param("prediction_mode", "", "flow | fast; empty: the checkpoint's (a LeRobot policy's prediction_mode, "
          "else flow)"),
    Param("fast_tokenizer", "", "FAST tokenizer directory (processor_config.json + tokenizer.json); empty: "
          "<checkpoint>/fast_tokenizer"),
    Param("fast_max_tokens", 100, "FAST mode: token budget of one generated chunk"),
    Param("denoising_steps", 10, "flow-matching Euler steps per chunk"),
    Param("seed", 0, "noise seed (same seed, same observation: same chunk)"),
    Param("dataset", "", "statistics to use when the checkpoint holds several datasets; empty: the only one"),
    Param("instruction", "", "default task instruction until /instruction says otherwise"),
    Param("trigger_mode", "continuous", "continuous | on_demand (when ExecutorStatus.chunk_requested)"),
    Param("rtc", False, "real-time chunking: inpaint the executor's committed steps"),
    Param("sync_tolerance_s", 0.05, "cameras and joint states must lie this close to t_obs [s]"),
    Param("max_observation_age_s", 0.5, "skip observations older than this when inference starts [s]"),
    Param("subtask_max_tokens", 0, "Uni-CoT subtask tokens to generate per chunk (0: off)"),
    Param("status_topic", "/executor_node/status", "ExecutorStatus topic (on_demand trigger and RTC)"),
    Param("frame_id", "base_link", "frame_id of published chunks"),
    Param("shutdown_timeout_s", 3.0, "on shutdown, wait this long for an inference in progress to end [s]; then "
          "the process exits without it (inside launch's 5 s grace)"),
)


class PolicyNode(WallOssLifecycleNode):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("policy_node", **kwargs)
        self.p = declare(self, PARAMS)
        self.backend = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._running = False
        self._worker: threading.Thread | None = None
        self._status: ExecutorStatus | None = None
        self._chunk_id = 0
        self._latency_s = 0.0
        self._frames_received: dict[str, int] = {}
        self._joint_states_received = 0
        self._waiting_for = "not configured"
        self._waiting_news: dict[str, float] = {}  # since when each reason to wait has held (until a chunk is made)

    # ---------------------------------------------------------------- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.p = declare(self, PARAMS)
        try:
            self.contract = resolve_contract(self.p["contract"])
            if self.p["backend"] not in ("local", *REMOTE_BACKENDS):
                raise ValueError(f"backend must be local, openpi or wallx, got {self.p['backend']!r}")
            if self.p["backend"] in REMOTE_BACKENDS:  # no torch on this machine needed
                return self._configure_remote(state)
            from wall_oss_ros.policy.loader import load_backend
            from wall_oss_ros.policy.wall_oss.backend_wall_oss import torch_dtype

            self.backend, found = load_backend(self.p["checkpoint"], self.contract, device=self.p["device"] or None,
                                               dtype=torch_dtype(self.p["dtype"]),
                                               denoising_steps=int(self.p["denoising_steps"]), seed=int(self.p["seed"]),
                                               dataset=self.p["dataset"] or None,
                                               subtask_max_tokens=int(self.p["subtask_max_tokens"]),
                                               cpu_threads=int(self.p["cpu_threads"]),
                                               prediction_mode=self.p["prediction_mode"] or None,
                                               fast_tokenizer=self.p["fast_tokenizer"] or None,
                                               fast_max_tokens=int(self.p["fast_max_tokens"]))
            self.get_logger().info(f"{self.p['checkpoint']}: {found}")
            self.backend.warmup()
        except Exception as exc:  # any load failure must leave the node unconfigured, with the reason
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        return self._configure_graph(state)

    def _configure_remote(self, state: LifecycleState) -> TransitionCallbackReturn:
        """The policy on a server: configured even while it is down (no chunk until it answers; the executor
        halts on its chunk timeout meanwhile, as for a dead local policy)."""
        import os

        from wall_oss_ros.policy.remote.websocket_client import RemotePolicyError

        if self.p["backend"] == "wallx":
            from wall_oss_ros.policy.remote.wallx_backend import WallxBackend
            from wall_oss_ros.policy.remote.wallx_schema import load_schema

            if not self.p["server_schema"]:
                raise ValueError("backend wallx needs server_schema (e.g. wallx_bimanual_ee)")
            if self.p["rtc"]:
                raise ValueError("backend wallx: the wall-x server has no real-time chunking; set rtc false")
            self.backend = WallxBackend(self.p["server_uri"], self.contract,
                                        load_schema(self.p["server_schema"], self.contract),
                                        timeout_s=float(self.p["server_timeout_s"]))
        else:
            from wall_oss_ros.policy.remote.openpi_backend import OpenpiBackend

            key_env = self.p["server_api_key_env"]
            api_key = os.environ.get(key_env) if key_env else None
            if key_env and not api_key:
                raise ValueError(f"server_api_key_env {key_env!r}: the variable is not set")
            self.backend = OpenpiBackend(self.p["server_uri"], self.contract, api_key=api_key,
                                         timeout_s=float(self.p["server_timeout_s"]))
        try:
            self.backend.warmup()
            self.get_logger().info(f"policy server {self.p['server_uri']}: {self.backend.metadata}")
        except RemotePolicyError as exc:
            self.get_logger().warning(f"{exc}; retrying with each observation")
        return self._configure_graph(state)

    def _configure_graph(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.instruction = self.p["instruction"]
        self.assembler = ObservationAssembler(self.contract, float(self.p["sync_tolerance_s"]),
                                              float(self.p["max_observation_age_s"]))
        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self._chunk_pub = self.create_publisher(ActionChunk, "~/action_chunk", reliable)
        self._subtask_pub = self.create_publisher(String, "~/subtask", reliable)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", reliable)
        for cam in self.contract.cameras:
            kind = CompressedImage if cam.transport is CameraTransport.COMPRESSED else Image
            self.create_subscription(kind, cam.topic, lambda m, name=cam.name: self._on_frame(name, m),
                                     CAMERA_QOS)
        for topic in self.contract.joint_state_topics:
            self.create_subscription(JointState, topic, self._on_joints, STATE_QOS)
        for g in self.contract.groups:
            if g.state_topic:  # a Cartesian EE group; one through IK is measured by its joints
                self.create_subscription(PoseStamped, g.state_topic, lambda m, n=g.name: self._on_pose(n, m),
                                         STATE_QOS)
        self.create_subscription(String, "/instruction", self._on_instruction, reliable)
        self.create_subscription(ExecutorStatus, self.p["status_topic"], self._on_status, reliable)
        self._frames_received = {cam.name: 0 for cam in self.contract.cameras}
        self.create_timer(1.0, self._observation_diagnostics)
        remote = self.p["backend"] in REMOTE_BACKENDS
        where = (f"{self.p['backend']} policy server {self.p['server_uri']}" if remote else
                 f"{self.backend.layout} checkpoint on {self.backend.device} ({self.backend.dtype}, "
                 f"{self.backend.prediction_mode} mode)")
        self.get_logger().info(f"configured: {where}, horizon {self.backend.horizon}, contract {self.contract.name}")
        self.watch_sim_clock()
        return TransitionCallbackReturn.SUCCESS

    def _stop_worker(self, timeout_s: float) -> bool:
        """Ask the worker to stop and join it; False if an inference is still running after timeout_s."""
        self._running = False  # the worker ends at its next wake-up, after the inference in progress
        self._wake.set()
        if self._worker is None:
            return True
        self._worker.join(timeout=timeout_s)
        return not self._worker.is_alive()

    def destroy_node(self) -> None:
        """Never leaves the worker inside torch at interpreter exit: that aborts the process ("terminate
        called without an active exception"). An inference longer than shutdown_timeout_s is abandoned by
        ending the process at once, with a message, instead of waiting past launch's grace period."""
        timeout_s = float(self.p["shutdown_timeout_s"])
        if not self._stop_worker(timeout_s):
            self.get_logger().warning(f"an inference was still running {timeout_s} s after the stop request: "
                                      "exiting without waiting for it")
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        super().destroy_node()

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._running = True
        self._worker = threading.Thread(target=self._work, name="policy_worker", daemon=True)
        self._worker.start()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if not self._stop_worker(30.0):
            self.get_logger().error("the inference in progress did not end within 30 s of deactivation")
        self._worker = None
        return super().on_deactivate(state)

    # ---------------------------------------------------------------- callbacks (store only)
    def _on_frame(self, camera: str, msg: Image | CompressedImage) -> None:
        self._frames_received[camera] += 1
        with self._lock:
            self.assembler.add_frame(camera, stamp_to_sec(msg.header.stamp), msg)
        self._wake.set()

    def _on_joints(self, msg: JointState) -> None:
        self._joint_states_received += 1
        positions = self.read_joint_state(msg)
        if positions is None:
            return
        with self._lock:
            self.assembler.add_joints(stamp_to_sec(msg.header.stamp), positions)

    def _on_pose(self, group: str, msg: PoseStamped) -> None:
        with self._lock:
            self.assembler.add_pose(group, *pose_from_msg(msg))

    def _on_instruction(self, msg: String) -> None:
        self.instruction = msg.data

    def _on_status(self, msg: ExecutorStatus) -> None:
        self._status = msg
        if msg.chunk_requested:
            self._wake.set()

    # ---------------------------------------------------------------- worker
    def _wanted(self) -> bool:
        if self.p["trigger_mode"] != "on_demand":
            return True
        return self._status is None or bool(self._status.chunk_requested)

    def _work(self) -> None:
        try:
            self._work_loop()
        except Exception:
            if self._running and self.context.ok():
                raise
            # Torn down meanwhile (Ctrl-C shuts the context down before the node is destroyed): a publish
            # from this thread found its context gone. Nothing to report to, nothing left to do.

    def _work_loop(self) -> None:
        while self._running:
            self._wake.wait(timeout=0.05)
            self._wake.clear()
            if not self._running or not self._wanted():
                continue
            with self._lock:
                snapshot, reason = self.assembler.snapshot(self.now())
            if snapshot is not None and not self.instruction.strip():
                snapshot, reason = None, NO_INSTRUCTION
            self._waiting_for = reason
            if snapshot is None:
                self._say_waiting(reason)
                continue
            self._waiting_news.clear()
            try:
                images = {name: image_to_rgb(frame) for name, frame in snapshot.frames.items()}
            except ConversionError as exc:  # unknown encoding, corrupt data: no chunk from this observation
                self._waiting_for = f"unusable camera frame: {exc}"
                self.get_logger().error(self._waiting_for, throttle_duration_sec=1.0)
                self._diagnose(DiagnosticStatus.ERROR, self._waiting_for, {}, name=OBSERVATION_STATUS)
                continue
            try:
                self._infer(snapshot, images)
            except Exception as exc:  # a bad observation must not kill the worker
                if not self._running or not self.context.ok():  # torn down meanwhile: the publishers are gone
                    return
                self.get_logger().error(f"inference failed: {exc}", throttle_duration_sec=1.0)
                self._diagnose(DiagnosticStatus.ERROR, f"inference failed: {exc}", {})

    def _say_waiting(self, reason: str) -> None:
        """What the graph waits for, on the console (not only /diagnostics), once it has lasted: a joint state
        still in flight for the newest frame is the normal state of a moment, not news."""
        if reason == NO_NEW_OBSERVATION:  # between frames: the reasons before it still hold
            return
        since = self._waiting_news.setdefault(reason, time.monotonic())
        if time.monotonic() - since >= WAITING_NEWS_S:
            self.get_logger().info(f"waiting: {reason}", throttle_duration_sec=5.0)

    def _rtc_request(self, t_obs: float) -> RtcRequest | None:
        status = self._status
        if not self.p["rtc"] or status is None or status.committed_steps == 0:
            return None
        dim = len(status.committed_names)
        committed = np.asarray(status.committed_values, dtype=float).reshape(status.committed_steps, dim)
        order = [list(status.committed_names).index(n) for n in self.contract.action_names]
        committed_t = stamp_to_sec(status.committed_start) + status.committed_dt_s * np.arange(len(committed))
        # The executor runs step i of the new chunk at t_obs + i·dt/speed_scale (its stretched clock): as far
        # apart as the committed steps.
        step_s = status.committed_dt_s if status.committed_dt_s > 0.0 else self.contract.dt_s
        steps_t = t_obs + step_s * np.arange(self.backend.horizon)
        inside = steps_t <= committed_t[-1]
        if not inside.any():
            return None
        values = np.stack([np.interp(steps_t[inside], committed_t, committed[:, j]) for j in order], axis=1)
        delay = math.ceil(max(self._latency_s, 0.0) / step_s)
        return RtcRequest(values, delay)

    def _infer(self, snapshot: object, images: dict[str, np.ndarray]) -> None:
        observation = Observation(images, snapshot.state, self.instruction, round(snapshot.t_obs * 1e9))
        result = self.backend.infer(observation, rtc=self._rtc_request(snapshot.t_obs))
        if not self._running:  # stopped during the inference: the node is being torn down, publish nothing
            return
        self._latency_s = 0.8 * self._latency_s + 0.2 * max(0.0, self.now() - snapshot.t_obs)
        msg = chunk_to_msg(result, self._chunk_id, snapshot.t_obs, self.p["frame_id"],
                           int(self._status.active_chunk_id) if self._status is not None else 0)
        self._chunk_id += 1
        self._chunk_pub.publish(msg)
        if result.subtask:
            self._subtask_pub.publish(String(data=result.subtask))
        values = {"inference_s": f"{result.inference_end_s - result.inference_start_s:.4f}",
                  "observation_to_chunk_s": f"{self._latency_s:.4f}", "chunk_id": str(msg.chunk_id)}
        if hasattr(self.backend, "round_trip_s"):
            values["server_round_trip_s"] = f"{self.backend.round_trip_s:.4f}"
        self._diagnose(DiagnosticStatus.OK, "chunk published", values)

    def _observation_diagnostics(self) -> None:
        """Frames received per camera and what the worker waits for (stale or unsynchronised data).

        The publishers this node has discovered per camera topic tell a driver that is not running (0)
        from one that runs but whose frames do not arrive (QoS, transport)."""
        values = {f"frames_received/{name}": str(n) for name, n in self._frames_received.items()}
        values.update({f"publishers/{c.name}": str(self.count_publishers(c.topic)) for c in self.contract.cameras})
        values["joint_states_received"] = str(self._joint_states_received)
        waiting = self._waiting_for
        level = DiagnosticStatus.WARN if waiting and waiting != NO_NEW_OBSERVATION else DiagnosticStatus.OK
        with self._lock:
            problem = joint_state_problem(self.contract, self.assembler.joints)
        if waiting.startswith("unusable camera frame") or (self._joint_states_received and problem):
            level = DiagnosticStatus.ERROR  # data arrives but cannot be used: no chunk until it is fixed
            waiting = waiting if waiting.startswith("unusable") else problem
        self._diagnose(level, waiting or "observations flowing", values, name=OBSERVATION_STATUS)

    def _diagnose(self, level: int, message: str, values: dict[str, str], name: str = "wall_oss_ros: policy") -> None:
        diag = DiagnosticArray()
        diag.header.stamp = self.get_clock().now().to_msg()
        diag.status = [DiagnosticStatus(level=level, name=name, message=message,
                                        hardware_id=self.contract.name,
                                        values=[KeyValue(key=k, value=v) for k, v in values.items()])]
        self._diag_pub.publish(diag)


def main(args: list[str] | None = None) -> int:
    return run(PolicyNode, args)  # the worker is a thread of its own: callbacks keep flowing while it infers


if __name__ == "__main__":
    sys.exit(main())
