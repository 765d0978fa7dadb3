"""executor_node: receding-horizon execution of action chunks with the safety pipeline, on a control timer.

Lifecycle: configure loads the contract and builds the executor; activate starts the control timer (and
the executor when `autostart`); deactivate halts smoothly, then holds. Commands go to each group's
controller topic (JointTrajectory in stream or horizon mode, Float64MultiArray, Twist(Stamped),
PoseStamped) unless `dry_run`; ~/plan_markers draws the predicted tip paths. While active, the ~/run_policy
action runs a task as a goal (ros/run_policy_server.py). All control logic lives in wall_oss_ros.core.executor.
"""

from __future__ import annotations

import sys
import time
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger
from visualization_msgs.msg import MarkerArray

from wall_oss_ros.core.chunk import IntakeLimits
from wall_oss_ros.core.contract import OutputKind, resolve_contract
from wall_oss_ros.core.executor import Executor
from wall_oss_ros.core.executor_types import ExecutorConfig, MeasuredState
from wall_oss_ros.core.observation import joint_state_problem
from wall_oss_ros.core.plan import MergeStrategy, PlanConfig
from wall_oss_ros.core.plan_clock import check_speed_scale
from wall_oss_ros.core.safety.status import ExecutorState, StatusCode
from wall_oss_ros.core.safety.watchdog import WatchdogConfig
from wall_oss_ros.core.tip_paths import tip_paths
from wall_oss_ros.msg import ActionChunk, ExecutorStatus
from wall_oss_ros.ros import realtime
from wall_oss_ros.ros.conversions import (
    OUTPUT_TYPES,
    ConversionError,
    chunk_from_msg,
    command_to_msg,
    horizon_to_msg,
    pose_from_msg,
    sec_to_stamp,
    stamp_to_sec,
    status_to_msg,
    tip_markers,
)
from wall_oss_ros.ros.lifecycle_support import WallOssLifecycleNode, run
from wall_oss_ros.ros.parameters import Param, declare
from wall_oss_ros.ros.run_policy_server import RunPolicyServer

PARAMS = (
    Param("contract", "aloha_bimanual", "robot contract: a name under config/robots/ or a YAML path"),
    Param("control_hz", 100.0, "control timer rate [Hz]; one tick advances the command by 1/control_hz"),
    Param("status_hz", 20.0, "rate of ~/status and /diagnostics [Hz]"),
    Param("chunk_topic", "/policy_node/action_chunk", "ActionChunk topic to execute"),
    Param("merge_strategy", "crossfade", "replace | crossfade | ensemble | rtc"),
    Param("crossfade_steps", 4, "crossfade window [steps]"),
    Param("ensemble_decay", 0.01, "ACT temporal-ensembling decay m (weights exp(-m·i))"),
    Param("execute_fraction", 0.8, "receding horizon: share of each chunk that may run"),
    Param("request_threshold_steps", 8, "chunk_requested when fewer planned steps remain [steps]"),
    Param("lookahead_s", 0.0, "drop chunk steps due before now + lookahead [s] (controller delay)"),
    Param("feedforward_window_s", 0.2, "span of the plan's rate estimates fed forward to the limiter [s]; "
                                       "averages chunk jitter out (0: the spline's own derivatives)"),
    Param("speed_scale", 1.0, "run the plan at this share of its speed, in (0, 1]: a chunk's step i at t_obs + "
          "i·dt/speed_scale, same path, limits unchanged (a low-speed first rollout); settable at runtime "
          "(ros2 param set), reached at speed_scale_rate_per_s"),
    Param("speed_scale_rate_per_s", 1.0, "fastest change of the running speed scale [1/s]"),
    Param("retime", True, "slow the plan along its path where a chunk asks for more than the limits allow, "
          "instead of chasing the time-indexed target"),
    Param("chunk_timeout_s", 1.0, "halt when no chunk was accepted for this long [s]"),
    Param("max_observation_age_s", 0.5, "halt when the measured state is older than this [s]"),
    Param("tracking_grace_s", 0.2, "tracking error must persist this long before a fault [s]"),
    Param("follow_window_s", 0.5, "fault when no joint of an arm group has moved with its command over this span "
          "[s] (a controller dropping the commands; grippers excluded); 0: off"),
    Param("follow_min_motion", 0.1, "commanded net motion of an axis within follow_window_s that must show at "
          "the robot [rad, m or gripper unit]"),
    Param("follow_min_ratio", 0.1, "measured / commanded progress below this is not following"),
    Param("max_chunk_age_s", 1.0, "reject chunks whose observation is older than this at arrival [s]"),
    Param("max_future_s", 0.05, "reject chunks stamped later than now by more than this [s] (clock offset)"),
    Param("jtc_mode", "horizon", "JointTrajectory outputs: horizon (a path stamped with the tick's time: the "
                                 "command now, the next horizon_points commands, a stop to rest; what a stock "
                                 "controller accepts and runs on through late ticks) | stream (one moving point per "
                                 "tick: needs allow_nonzero_velocity_at_trajectory_end: true)"),
    Param("horizon_points", 10, "horizon mode: planned commands per JointTrajectory, one control period apart "
                                "(the ticks a starved executor may miss before the robot brakes)"),
    Param("max_clock_silence_s", 0.05, "use_sim_time: skip a tick when /clock last arrived longer ago than this "
                                       "[s, wall time]: the process was starved and the tick's time is stale (a "
                                       "path stamped with it could arrive after its own end)"),
    Param("realtime_priority", 0, "SCHED_FIFO priority 1–99 for every thread of this process (0: normal "
                                  "scheduling); refused without CAP_SYS_NICE / an rtprio limit, with a message"),
    Param("cpu_affinity", "", "CPUs for this process, e.g. '3' or '2-3' ('' any): keep the control loop off the "
                              "cores that run inference", any_type=True),
    Param("plan_markers_hz", 10.0, "rate of ~/plan_markers (predicted tip paths) [Hz]; 0: off"),
    Param("controller_grace_s", 0.5, "halt with a fault when a controller topic has had no subscriber this long "
                                     "while commanding [s]"),
    Param("dry_run", False, "compute and publish status, diagnostics and markers only; never command the controllers"),
    Param("autostart", False, "start executing chunks on activation (otherwise call ~/start or send a ~/run_policy "
                               "goal)"),
    Param("run_policy_preempt", True, "a ~/run_policy goal that arrives while one runs replaces it (false: it is "
                                      "refused)"),
    Param("subtask_topic", "/policy_node/subtask", "the policy's subtask (std_msgs/String), for ~/run_policy "
                                                   "feedback"),
    Param("frame_id", "base_link", "frame of stamped outputs and of ~/plan_markers (the kinematic model's root)"),
)


class ExecutorNode(WallOssLifecycleNode):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("executor_node", **kwargs)
        self.p = declare(self, PARAMS)
        self.core: Executor | None = None  # the control core (rclpy reserves `executor`)
        self._timer = self._status_timer = self._markers_timer = None
        self._run_policy: RunPolicyServer | None = None  # while active
        self._joints: dict[str, float] = {}
        self._joint_stamps: dict[str, float] = {}
        self._poses: dict[str, tuple] = {}
        self._pose_stamps: dict[str, float] = {}
        self._halting_on_deactivate = False
        self._tick_intervals_s: deque[float] = deque(maxlen=1000)  # wall-clock gaps between ticks (jitter)
        self._last_tick_wall: float | None = None
        self._last_tick_now: float | None = None
        self._missed_deadlines = 0
        self._stale_clock_ticks = 0
        self._clock_seen_wall: float | None = None  # use_sim_time: when /clock last arrived [s, monotonic]
        self._joint_states_received = 0
        self._unheard_since: float | None = None  # since when some controller topic has no subscriber
        self._ticks = 0  # control ticks since activation
        self._missed_ticks = 0  # control periods that passed without a tick
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # ---------------------------------------------------------------- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.p = declare(self, PARAMS)
        try:
            if self.p["jtc_mode"] not in ("stream", "horizon") or int(self.p["horizon_points"]) < 1:
                raise ValueError(f"jtc_mode must be stream or horizon (got {self.p['jtc_mode']!r}) and "
                                 f"horizon_points at least 1 (got {self.p['horizon_points']})")
            for name in ("control_hz", "status_hz", "chunk_timeout_s", "max_observation_age_s", "max_chunk_age_s",
                         "controller_grace_s"):
                if not float(self.p[name]) > 0:
                    raise ValueError(f"parameter {name} must be positive, got {self.p[name]}")
            realtime.check_priority(int(self.p["realtime_priority"]))
            cpus = realtime.parse_cpus(str(self.p["cpu_affinity"]))
            self.contract = resolve_contract(self.p["contract"])
            config = ExecutorConfig(
                control_hz=float(self.p["control_hz"]),
                plan=PlanConfig(MergeStrategy(self.p["merge_strategy"]), int(self.p["crossfade_steps"]),
                                float(self.p["ensemble_decay"]), float(self.p["execute_fraction"]),
                                float(self.p["lookahead_s"]), int(self.p["request_threshold_steps"]),
                                float(self.p["feedforward_window_s"])),
                intake=IntakeLimits(float(self.p["max_chunk_age_s"]), float(self.p["max_future_s"])),
                watchdog=WatchdogConfig(float(self.p["chunk_timeout_s"]), float(self.p["max_observation_age_s"]),
                                        float(self.p["tracking_grace_s"]), float(self.p["follow_window_s"]),
                                        float(self.p["follow_min_motion"]), float(self.p["follow_min_ratio"])),
                speed_scale=float(self.p["speed_scale"]),
                speed_scale_rate_per_s=float(self.p["speed_scale_rate_per_s"]), retime=bool(self.p["retime"]))
            self.core = Executor(self.contract, config)
        except (ValueError, OSError) as exc:
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        if int(self.p["realtime_priority"]) or cpus:
            applied, what = realtime.apply(int(self.p["realtime_priority"]), cpus)
            (self.get_logger().info if applied else self.get_logger().error)(f"scheduling: {what}")
        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self._outputs = {g.name: (g, self.create_publisher(OUTPUT_TYPES[g.output.kind], g.output.topic, 1))
                         for g in self.contract.groups}
        self._status_pub = self.create_publisher(ExecutorStatus, "~/status", reliable)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", reliable)
        self._markers_pub = self.create_publisher(MarkerArray, "~/plan_markers", reliable)
        self._axes = {ga.group.name: ga.axes for ga in self.core.groups}
        self._subs = [self.create_subscription(ActionChunk, self.p["chunk_topic"], self._on_chunk, reliable),
                      self.create_subscription(Bool, "/estop", self._on_estop, reliable)]
        if self.get_parameter("use_sim_time").value:
            self._subs.append(self.create_subscription(Clock, "/clock", self._on_clock, qos_profile_sensor_data))
        self._subs += [self.create_subscription(JointState, t, self._on_joint_state, qos_profile_sensor_data)
                       for t in self.contract.joint_state_topics]
        for g in self.contract.groups:
            if g.state_topic:  # a Cartesian EE group; one through IK is measured by its joints
                self._subs.append(self.create_subscription(
                    PoseStamped, g.state_topic, lambda m, name=g.name: self._on_pose(name, m), qos_profile_sensor_data))
        self._service_handles = [self.create_service(Trigger, "~/start", self._srv_start),
                          self.create_service(SetBool, "~/pause", self._srv_pause),
                          self.create_service(Trigger, "~/reset_estop", self._srv_reset_estop)]
        self.get_logger().info(f"configured: contract {self.contract.name}, {config.control_hz} Hz, "
                               f"{'dry run' if self.p['dry_run'] else 'commanding controllers'}")
        self.watch_sim_clock()
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._halting_on_deactivate = False
        self._timer = self.create_timer(1.0 / float(self.p["control_hz"]), self._tick)
        self._status_timer = self.create_timer(1.0 / float(self.p["status_hz"]), self._publish_status)
        self._markers_timer = None
        if float(self.p["plan_markers_hz"]) > 0:
            self._markers_timer = self.create_timer(1.0 / float(self.p["plan_markers_hz"]), self._publish_markers)
        self._last_tick_wall = self._last_tick_now = None
        self._ticks = self._missed_ticks = 0
        if self.p["autostart"]:
            _, text = self.core.start(self.now())
            self.get_logger().info(f"autostart: {text}")
        self._run_policy = RunPolicyServer(self, self.core, self.now, bool(self.p["run_policy_preempt"]),
                                           str(self.p["subtask_topic"]))
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        # Halt smoothly: the control timer keeps running until the command has stopped, then holds.
        if self._run_policy is not None:
            self._run_policy.shutdown()
            self._run_policy.destroy()
            self._run_policy = None
        self.core.pause(True, self.now())
        self._halting_on_deactivate, self._standstill_sent = True, False
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        for timer in (self._timer, self._status_timer, self._markers_timer):
            if timer is not None:
                self.destroy_timer(timer)
        self._timer = self._status_timer = self._markers_timer = None
        return TransitionCallbackReturn.SUCCESS

    def _on_set_parameters(self, params: list) -> SetParametersResult:
        """speed_scale takes effect at once (through its ramp); the others at the next configure."""
        for param in params:
            if param.name == "speed_scale":
                try:
                    scale = check_speed_scale(param.value)
                except (TypeError, ValueError) as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
                if self.core is not None:
                    self.core.set_speed_scale(scale)
                    self.get_logger().info(f"speed_scale {scale}")
        return SetParametersResult(successful=True)

    # ---------------------------------------------------------------- inputs
    def _on_joint_state(self, msg: JointState) -> None:
        positions = self.read_joint_state(msg)
        if positions is None:
            return
        stamp = stamp_to_sec(msg.header.stamp) or self.now()
        self._joint_states_received += 1
        self._joints.update(positions)
        self._joint_stamps.update(dict.fromkeys(positions, stamp))

    def _on_pose(self, group: str, msg: PoseStamped) -> None:
        self._poses[group] = pose_from_msg(msg)
        self._pose_stamps[group] = stamp_to_sec(msg.header.stamp) or self.now()

    def _measured(self) -> MeasuredState | None:
        needed = [j for g in self.contract.groups for j in g.joints]
        stamps = [self._joint_stamps[j] for j in needed if j in self._joint_stamps]
        stamps += list(self._pose_stamps.values())
        if not stamps:
            return None
        return MeasuredState(min(stamps), dict(self._joints), dict(self._poses))

    def _on_chunk(self, msg: ActionChunk) -> None:
        try:
            chunk = chunk_from_msg(msg)
        except ConversionError as exc:
            self.core.reject_chunk(str(exc))
            self.get_logger().error(str(exc), throttle_duration_sec=1.0)
            return
        outcome = self.core.on_chunk(chunk, self.now())
        if not outcome.accepted:
            self.get_logger().warning(outcome.reason, throttle_duration_sec=1.0)

    def _on_estop(self, msg: Bool) -> None:
        if msg.data:
            self.core.estop()
            self.get_logger().error("e-stop")

    # ---------------------------------------------------------------- services
    def _srv_start(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.core.start(self.now())
        return response

    def _srv_pause(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        response.success, response.message = self.core.pause(bool(request.data), self.now())
        return response

    def _srv_reset_estop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.core.reset_estop()
        return response

    # ---------------------------------------------------------------- control
    def _on_clock(self, _msg: Clock) -> None:
        self._clock_seen_wall = time.monotonic()

    def _tick(self) -> None:
        wall = time.monotonic()
        if self._clock_seen_wall is not None and wall - self._clock_seen_wall > float(self.p["max_clock_silence_s"]):
            self._stale_clock_ticks += 1  # timers run before the /clock callback that would make this tick current
            return
        if self._last_tick_wall is not None:
            self._tick_intervals_s.append(wall - self._last_tick_wall)
        self._last_tick_wall = wall
        now = self.now()
        if self._last_tick_now is not None and now - self._last_tick_now > 1.5 / float(self.p["control_hz"]):
            self._missed_deadlines += 1  # a period passed without a tick (node clock: sim time when simulated)
            self._missed_ticks += round((now - self._last_tick_now) * float(self.p["control_hz"])) - 1
        self._ticks += 1
        self._last_tick_now = now
        commands = self.core.tick(now, self._measured())
        if commands is None or self.p["dry_run"]:
            return
        if self._halting_on_deactivate and self.core.limiter.stopped():
            if self._standstill_sent:
                return  # halted after deactivation: the controllers hold the last command, a standstill
            self._standstill_sent = True
        stamp = sec_to_stamp(now)
        period = 1.0 / float(self.p["control_hz"])
        horizon = self.core.horizon(int(self.p["horizon_points"])) if self.p["jtc_mode"] == "horizon" else None
        for cmd in commands:
            group, pub = self._outputs[cmd.group]
            if horizon is not None and group.output.kind is OutputKind.JTC:
                pub.publish(horizon_to_msg(cmd.names, horizon, self._axes[cmd.group]))
            else:
                pub.publish(command_to_msg(cmd, group.output.kind, group.output.frame_id or self.p["frame_id"],
                                           stamp, period))

    def _publish_markers(self) -> None:
        if self.core is None or not self.core.initialized:
            return
        committed = self.core.status(self.now()).committed_values
        self._markers_pub.publish(tip_markers(tip_paths(self.core, committed), self.p["frame_id"],
                                              sec_to_stamp(self.now())))

    def _watch_controllers(self) -> None:
        """A controller that stops listening (crashed, unloaded) must not receive a jump when it returns."""
        if self.p["dry_run"] or self.core.state not in (ExecutorState.RUNNING, ExecutorState.HOLDING,
                                                          ExecutorState.HALTING):
            self._unheard_since = None
            return
        silent = [g.output.topic for g, pub in self._outputs.values() if pub.get_subscription_count() == 0]
        if not silent:
            self._unheard_since = None
            return
        now = time.monotonic()
        self._unheard_since = self._unheard_since or now
        if now - self._unheard_since >= float(self.p["controller_grace_s"]):
            self.core.controller_lost(f"no subscriber on {', '.join(silent)}")
            self.get_logger().error(f"no controller listens on {', '.join(silent)}: halted")

    def _publish_status(self) -> None:
        self._watch_controllers()
        if self._run_policy is not None:
            self._run_policy.on_status()
        snap = self.core.status(self.now())
        msg = status_to_msg(snap, self.p["frame_id"])
        msg.ticks, msg.missed_ticks = self._ticks, self._missed_ticks
        self._status_pub.publish(msg)
        diag = DiagnosticArray()
        diag.header.stamp = self.get_clock().now().to_msg()
        level = DiagnosticStatus.OK
        if snap.state in (ExecutorState.ESTOP, ExecutorState.FAULT) or snap.status_code.is_halt:
            level = DiagnosticStatus.ERROR
        elif snap.status_code not in (StatusCode.NO_WARNING, StatusCode.PAUSED):
            level = DiagnosticStatus.WARN
        values = [KeyValue(key="state", value=snap.state.name), KeyValue(key="status", value=snap.status_text),
                  KeyValue(key="remaining_steps", value=str(snap.remaining_steps)),
                  KeyValue(key="last_fault", value=snap.last_fault)]
        values += [KeyValue(key=f"interventions/{k}", value=str(v)) for k, v in snap.interventions.items()]
        values += [KeyValue(key=k, value=f"{v:.4f}") for k, v in (
            ("chunk_age_s", snap.chunk_age_s), ("chunk_arrival_latency_s", snap.chunk_arrival_latency_s),
            ("observation_to_command_s", snap.observation_to_command_s), ("speed_scale", snap.speed_scale),
            ("plan_rate", snap.plan_rate), ("plan_lag_s", snap.plan_lag_s))]
        values.append(KeyValue(key="chunk_id", value=str(snap.chunk_id if snap.chunk_id is not None else "")))
        values += [KeyValue(key=k, value=v) for k, v in snap.arm_state.items()]
        values.append(KeyValue(key="missed_deadlines", value=str(self._missed_deadlines)))
        values.append(KeyValue(key="missed_ticks", value=str(self._missed_ticks)))
        values.append(KeyValue(key="stale_clock_ticks", value=str(self._stale_clock_ticks)))
        if len(self._tick_intervals_s) > 1:
            gaps = np.asarray(self._tick_intervals_s) * 1e3
            values += [KeyValue(key=f"tick_interval_{k}_ms", value=f"{v:.3f}") for k, v in (
                ("p50", np.percentile(gaps, 50)), ("p99", np.percentile(gaps, 99)), ("max", gaps.max()))]
        message = snap.status_text
        problem = joint_state_problem(self.contract, self._joints) if self._joint_states_received else \
            "no joint states received"
        if problem:
            # Without a usable measured state nothing is commanded: an error once messages arrive unusable.
            level = max(level, DiagnosticStatus.ERROR if self._joint_states_received else DiagnosticStatus.WARN)
            message = f"{message}; {problem}"
        elif snap.status_code.is_halt and snap.last_fault and snap.last_fault != snap.status_text:
            message = f"{message}: {snap.last_fault}"
        chunk_publishers = self.count_publishers(self.p["chunk_topic"])
        values.append(KeyValue(key="chunk_publishers", value=str(chunk_publishers)))
        if snap.status_code is StatusCode.HALT_CHUNK_TIMEOUT and chunk_publishers == 0:
            # Tells a policy that is not running (or that DDS lost after a stall) from one that computes too slowly.
            message = f"{message}; no node publishes {self.p['chunk_topic']}"
        diag.status = [DiagnosticStatus(level=level, name="wall_oss_ros: executor", hardware_id=self.contract.name,
                                        message=message, values=values)]
        self._diag_pub.publish(diag)
        if problem:  # also on the console: a user without a diagnostics viewer sees what the executor waits for
            self.get_logger().warning(f"waiting: {problem} (topics {list(self.contract.joint_state_topics)})",
                                      throttle_duration_sec=5.0)


def main(args: list[str] | None = None) -> int:
    return run(ExecutorNode, args)


if __name__ == "__main__":
    sys.exit(main())
