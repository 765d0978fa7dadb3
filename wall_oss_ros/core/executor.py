"""Receding-horizon executor: chunks in, limited commands out, one deterministic tick at a time.

Clock-agnostic: every call takes `now` in seconds on the same clock as chunk stamps (ROS time, sim time
or a test's). Per tick: watchdogs → plan sample → target stage (finite check, position limits with
margin, workspace, gripper range, base velocity) → motion stage (Ruckig jerk limiting that never leaves
position bounds, then the max-step cap) → e-stop / pause / fault gate (smooth halt) → commands.
Workspace and gripper checks act on the target, before jerk limiting, so that they never make the
command jump.
"""

from __future__ import annotations

import math

import numpy as np

from wall_oss_ros.core.chunk import Chunk, ChunkRejectedError, absolute_targets, check_chunk
from wall_oss_ros.core.contract import GroupKind, OutputKind, RobotContract
from wall_oss_ros.core.executor_types import (
    ChunkOutcome,
    ExecutorConfig,
    ExecutorSnapshot,
    GroupCommand,
    MeasuredState,
)
from wall_oss_ros.core.horizon import Horizon
from wall_oss_ros.core.ik_stage import IkArm, IkStage, arm_ik
from wall_oss_ros.core.kinematics import ForwardKinematics, make_kinematics
from wall_oss_ros.core.plan import Plan
from wall_oss_ros.core.plan_clock import PlanClock
from wall_oss_ros.core.retiming import Retimer
from wall_oss_ros.core.rotations import matrix_to_rot6d, quat_to_matrix_one, tool_step_to, turned
from wall_oss_ros.core.safety.collision_guard import CollisionGuard
from wall_oss_ros.core.safety.motion import MotionLimiter
from wall_oss_ros.core.safety.status import (
    INTERVENTION_STATUS,
    STATUS_TEXT,
    ExecutorState,
    Intervention,
    StatusCode,
    most_severe,
)
from wall_oss_ros.core.safety.watchdog import Watchdogs
from wall_oss_ros.core.stop_checks import StopChecks
from wall_oss_ros.core.timed_plan import TimedPlan

HALTED_STATES = (ExecutorState.ESTOP, ExecutorState.FAULT, ExecutorState.PAUSED)


class _GroupAxes:
    """Where a group lives in the action vector (cols) and in the limiter's axes (axes)."""

    def __init__(self, group, cols: slice, axes: slice) -> None:  # noqa: ANN001 - Group
        self.group, self.cols, self.axes = group, cols, axes
        self.pos, self.rot = slice(axes.start, axes.start + 3), slice(axes.start + 3, axes.stop)  # EE groups
        self.kind: GroupKind = group.kind
        self.ik = group.ik  # ee_pose on joint-space controllers: the axes are the arm's joints
        self.joint_names: tuple[str, ...] = group.joints
        self.fk: ForwardKinematics | None = make_kinematics(group.kinematics) if group.kinematics else None
        self.quat = np.array([0.0, 0.0, 0.0, 1.0])  # EE groups: commanded orientation (x, y, z, w)
        self.rotation: np.ndarray | None = np.eye(3)  # its matrix, derived lazily (see matrix())
        self.last_inside_target: np.ndarray | None = None  # workspace groups: last target whose tip was inside
        if group.workspace is not None:
            self.box_min, self.box_max = np.array(group.workspace.min_m), np.array(group.workspace.max_m)

    def matrix(self) -> np.ndarray:
        """Commanded orientation of an EE group as a matrix (computed once per change)."""
        if self.rotation is None:
            self.rotation = quat_to_matrix_one(self.quat)
        return self.rotation


class Executor:
    MEASURED_SLACK = 1e-6  # a measured position this close outside a limit is sensor noise, not a fault
    def __init__(self, contract: RobotContract, config: ExecutorConfig | None = None) -> None:
        self.contract = contract
        self.config = config = config or ExecutorConfig()
        self.period_s = 1.0 / config.control_hz
        limits, velocity_axes, continuous = [], [], []
        self.groups: list[_GroupAxes] = []
        for g in contract.groups:
            start = len(limits)
            group_limits = g.ik.limits if g.ik is not None else g.limits
            limits += group_limits
            velocity_axes += [g.kind is GroupKind.BASE_TWIST] * len(group_limits)
            continuous += list(g.continuous) if g.continuous else [False] * g.action_dim
            self.groups.append(_GroupAxes(g, contract.action_slice(g), slice(start, len(limits))))
        self.limits = tuple(limits)
        self._servo_axes = np.zeros(len(limits), dtype=bool)
        for ga in self.groups:
            if ga.ik is not None:
                self._servo_axes[ga.axes] = True
        self.limiter = MotionLimiter(limits, velocity_axes, self.period_s, servo_axes=self._servo_axes)
        self.velocity_axes = self.limiter.velocity_axes
        self.rotation_axes = np.zeros(len(limits), dtype=bool)
        for ga in self.groups:
            if ga.kind is GroupKind.EE_POSE and ga.ik is None:
                self.rotation_axes[ga.rot] = True
        self.position_axes = ~(self.velocity_axes | self.rotation_axes)
        self._two_acc = 2.0 * self.limiter.acceleration_max
        # Largest change of a position target per tick at full speed (inf: not a position axis).
        self._max_travel = np.where(self.position_axes, self.limiter.velocity_max * self.period_s, np.inf)
        # Target clamp bounds; unbounded (-inf, inf) for velocity and rotation axes.
        self.safe_min = np.where(self.position_axes, [lim.safe_min for lim in limits], -np.inf)
        self.safe_max = np.where(self.position_axes, [lim.safe_max for lim in limits], np.inf)
        for ga in self.groups:  # arms through IK: the solve keeps them inside (targets written after the clamp)
            if ga.ik is not None:
                self.safe_min[ga.axes], self.safe_max[ga.axes] = -np.inf, np.inf
        # Joint and gripper axes take their action columns one to one: one fancy index for all of them.
        direct = [ga for ga in self.groups if ga.kind in (GroupKind.JOINT_POSITION, GroupKind.GRIPPER)]
        self._direct_axes = (np.concatenate([np.arange(ga.axes.start, ga.axes.stop) for ga in direct])
                             if direct else np.zeros(0, dtype=int))
        self._direct_cols = (np.concatenate([np.arange(ga.cols.start, ga.cols.stop) for ga in direct])
                             if direct else np.zeros(0, dtype=int))
        if len(self._direct_axes) and np.array_equal(self._direct_axes, self._direct_cols) and \
                np.array_equal(self._direct_axes, np.arange(self._direct_axes[0], self._direct_axes[-1] + 1)):
            self._direct_axes = self._direct_cols = slice(int(self._direct_axes[0]), int(self._direct_axes[-1]) + 1)
        self._other_groups = [ga for ga in self.groups if ga not in direct and ga.ik is None]
        arms, start = [], 0
        for ga in self.groups:
            if ga.ik is not None:
                arms.append(IkArm(ga.group, ga.cols, ga.axes, slice(start, start + 6), arm_ik(ga.group)))
                start += 6
        self._ik = IkStage(arms, self.period_s) if arms else None
        axis_joints: list[str | None] = [None] * len(limits)
        for ga in self.groups:
            if len(ga.joint_names) == ga.axes.stop - ga.axes.start:
                axis_joints[ga.axes] = ga.joint_names
        self._guard = (CollisionGuard(contract.self_collision, axis_joints)
                       if contract.self_collision is not None else None)
        self._stop_checks = (StopChecks(self._ik, self._guard, self.period_s)
                             if self._ik is not None or self._guard is not None else None)
        # Axes whose JTC preview brakes instead of following the plan: arms through IK (no IK per preview
        # point) and everything the collision guard watches (whose stops it checked, not their plans).
        self._braked = np.zeros(len(limits), dtype=bool)  # axes the last step braked (for the IK stage)
        self._preview_brake = np.zeros(len(limits), dtype=bool)
        for arm in arms:
            self._preview_brake[arm.axes] = True
        if self._guard is not None:
            self._preview_brake |= self._guard.mask
        self._has_rotation, self._has_velocity = bool(self.rotation_axes.any()), bool(self.velocity_axes.any())
        self._fk_groups = [ga for ga in self.groups if ga.fk is not None]
        self.max_step = np.array([lim.max_step if lim.max_step is not None else
                                  config.step_cap_factor * lim.velocity_max * self.period_s for lim in limits])
        too_small = [i for i, lim in enumerate(limits) if self.max_step[i] < lim.velocity_max * self.period_s]
        if too_small:
            raise ValueError(f"max_step of axis {too_small[0]} is below velocity_max / control_hz: "
                             "the step cap would fight the velocity limit")
        # Post-step checks, as arrays that are infinite where an axis has no such limit.
        self._step_cap = np.where(self.position_axes, self.max_step, np.inf)
        self._check_lo = np.where(self.position_axes, self.limiter.lower - 1e-9, -np.inf)
        self._check_hi = np.where(self.position_axes, self.limiter.upper + 1e-9, np.inf)
        self.tracked_groups = [ga for ga in self.groups if ga.group.tracking_tolerance is not None]
        self.plan = Plan(np.array(continuous, dtype=bool), config.plan)
        self.timing = TimedPlan(self.plan, PlanClock(config.speed_scale, config.speed_scale_rate_per_s),
                                self._retimer() if config.retime else None, self._velocity_cols(), self.period_s)
        self.watchdogs = Watchdogs(config.watchdog)
        self.counters = {k: 0 for k in Intervention}
        self.state = ExecutorState.IDLE
        self.status_code = StatusCode.NO_WARNING
        self.last_fault = ""
        self._fault_code = StatusCode.NO_WARNING
        self._halt: StatusCode | None = None
        self._pending: set[StatusCode] = set()
        self._measured: MeasuredState | None = None
        self._initialized = False
        self._last_tick: float | None = None
        self._last_t_obs: float | None = None
        self._last_chunk_id: int | None = None
        self._preview_limiter: MotionLimiter | None = None
        # Horizon mode: the axes a JointTrajectoryController runs, the path last sent to them, and this tick's
        # time on that path with the command state before its step (point 0 of the next path).
        self._jtc_axes = np.zeros(len(limits), dtype=bool)
        for ga in self.groups:
            if ga.group.output.kind is OutputKind.JTC:
                self._jtc_axes[ga.axes] = True
        self._sent: Horizon | None = None
        self._tick_time = math.nan
        self._before = (self.limiter.p.copy(), self.limiter.v.copy(), self.limiter.a.copy())
        self._awaiting_first_command: float | None = None  # t_obs of a merged chunk not yet commanded
        self.observation_to_command_s = math.nan  # t_obs of the latest merged chunk → its first command [s]
        self.missed_ticks = 0  # control periods without a tick, bridged by the path last sent (horizon mode)
        self.chunk_arrival_latency_s = math.nan  # t_obs of the latest accepted chunk → its arrival [s]
        self.executed_plan_s = 0.0  # plan time executed (state RUNNING, a plan to follow) since construction [s]
        self.chunks_accepted = 0

    def _retimer(self) -> Retimer:
        """The retimer over the plan's position-like columns: joint and gripper positions with their axis limits,
        end-effector x, y, z with their Cartesian limits (the IK stage's for arms through IK)."""
        cols, vmax, amax = [], [], []
        for ga in self.groups:
            g = ga.group
            if ga.kind in (GroupKind.JOINT_POSITION, GroupKind.GRIPPER):
                limits = self.limits[ga.axes]
                cols += range(ga.cols.start, ga.cols.stop)
            elif ga.kind is GroupKind.EE_POSE:
                limits = g.limits[:3] if ga.ik is not None else self.limits[ga.pos]
                cols += range(ga.cols.start, ga.cols.start + 3)
            else:
                continue
            vmax += [lim.velocity_max for lim in limits]
            amax += [lim.acceleration_max for lim in limits]
        return Retimer(np.array(cols, dtype=int), np.array(vmax), np.array(amax))

    def _velocity_cols(self) -> np.ndarray:
        return np.array([c for ga in self.groups if ga.kind is GroupKind.BASE_TWIST
                         for c in range(ga.cols.start, ga.cols.stop)], dtype=int)

    def set_speed_scale(self, scale: float) -> None:
        """Run the plan on a clock this many times as fast as real time, in (0, 1] (ValueError otherwise);
        reached at speed_scale_rate_per_s, so the change is smooth."""
        self.timing.set_speed_scale(scale)

    # ---------------------------------------------------------------- commands from outside
    def start(self, now: float) -> tuple[bool, str]:
        """Begin (or resume after a fault) following chunks; refused while the e-stop is latched."""
        if self.state is ExecutorState.ESTOP:
            return False, "e-stop is latched: reset it first"
        if self.state in (ExecutorState.RUNNING, ExecutorState.HOLDING, ExecutorState.HALTING):
            return True, "already running"
        self.timing.clear()
        self._fault_code, self._halt = StatusCode.NO_WARNING, None
        if self.state is ExecutorState.IDLE:
            self._initialized = False  # nothing was commanded: start from the measured state
            if self._measured is not None and not self._initialize(self._measured):
                return False, self.last_fault
        # From FAULT or PAUSED the command continues from where it is (it may still be decelerating).
        self.state = ExecutorState.HOLDING
        self.watchdogs.arm(now)
        return True, "started"

    def estop(self) -> None:
        if self.state is not ExecutorState.ESTOP:
            self._count(Intervention.ESTOP)
            self.last_fault = "e-stop"
        self.state = ExecutorState.ESTOP
        self.timing.clear()

    def reset_estop(self) -> tuple[bool, str]:
        """Clear the e-stop latch once the command has stopped; the executor then waits for start()."""
        if self.state is not ExecutorState.ESTOP:
            return True, "e-stop was not latched"
        if not self.limiter.stopped():
            return False, "still decelerating: reset the e-stop once stopped"
        self.state = ExecutorState.IDLE
        return True, "e-stop reset: call start to run again"

    def pause(self, paused: bool, now: float) -> tuple[bool, str]:
        if paused:
            if self.state in (ExecutorState.RUNNING, ExecutorState.HOLDING, ExecutorState.HALTING):
                self.state = ExecutorState.PAUSED
                self.timing.clear()
                return True, "paused"
            return self.state is ExecutorState.PAUSED, f"cannot pause in state {self.state.name}"
        if self.state is not ExecutorState.PAUSED:
            return False, f"not paused (state {self.state.name})"
        self.state = ExecutorState.HOLDING
        self.timing.clear()
        self.watchdogs.arm(now)
        return True, "resumed: waiting for a fresh chunk"

    # ---------------------------------------------------------------- chunks
    def on_chunk(self, chunk: Chunk, now: float) -> ChunkOutcome:
        try:
            values = check_chunk(chunk, self.contract, now, self._last_t_obs, self._last_chunk_id,
                                 self.config.intake)
            targets = absolute_targets(values, chunk, self.contract)
            merge = self.state in (ExecutorState.RUNNING, ExecutorState.HOLDING, ExecutorState.HALTING)
            used = 0
            if merge and self._initialized:
                used = self.timing.merge(chunk.chunk_id, chunk.t_obs, chunk.dt_s, targets, now, self._command_anchor)
        except ChunkRejectedError as exc:
            self._count(Intervention(exc.kind))
            self.last_fault = str(exc)
            return ChunkOutcome(False, 0, str(exc))
        self._last_t_obs, self._last_chunk_id = chunk.t_obs, chunk.chunk_id
        self.chunks_accepted += 1
        self.watchdogs.chunk_accepted(now)
        self.chunk_arrival_latency_s = now - chunk.t_obs
        if merge and used:
            self._awaiting_first_command = chunk.t_obs
        if not merge:
            return ChunkOutcome(True, 0, f"not executed: executor is {self.state.name}")
        return ChunkOutcome(True, used, "")

    def controller_lost(self, text: str) -> None:
        """A controller stopped listening: halt and latch a fault (start() resumes once it is back)."""
        self._fault(StatusCode.HALT_NO_CONTROLLER, Intervention.NO_CONTROLLER, text)

    def reject_chunk(self, reason: str) -> None:
        """Count a chunk that could not even be read (malformed message) as rejected."""
        self._count(Intervention.REJECTED_CHUNK)
        self.last_fault = reason

    def _command_anchor(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The command as a target (value, rate, rate of change per second), where a plan joins it."""
        dim = self.contract.action_dim
        value, rate, rate2 = np.zeros(dim), np.zeros(dim), np.zeros(dim)
        lim = self.limiter
        for ga in self.groups:
            if ga.ik is not None:
                continue  # the IK stage's Cartesian command, below
            if ga.kind is GroupKind.EE_POSE:
                value[ga.cols] = np.concatenate([lim.p[ga.pos], matrix_to_rot6d(ga.matrix())])
                rate[ga.cols][:3], rate2[ga.cols][:3] = lim.v[ga.pos], lim.a[ga.pos]
            elif ga.kind is GroupKind.BASE_TWIST:
                value[ga.cols], rate[ga.cols] = lim.v[ga.axes], lim.a[ga.axes]
            else:
                value[ga.cols], rate[ga.cols], rate2[ga.cols] = lim.p[ga.axes], lim.v[ga.axes], lim.a[ga.axes]
        if self._ik is not None:
            self._ik.anchor(value, rate, rate2)
        return value, rate, rate2

    # ---------------------------------------------------------------- control tick
    def _initialize(self, measured: MeasuredState) -> bool:
        """Command state := measured state. Refuses a robot outside its limits (never command there)."""
        positions = np.zeros(len(self.limits))
        for ga in self.groups:
            g = ga.group
            if ga.kind is GroupKind.EE_POSE and ga.ik is None:
                if g.name not in measured.poses:
                    return self._fail(f"measured state lacks the pose of {g.name} ({g.state_topic})")
                xyz, quat = (np.asarray(x, dtype=float) for x in measured.poses[g.name])
                if not (np.all(np.isfinite(xyz)) and np.all(np.isfinite(quat)) and np.linalg.norm(quat) > 0.5):
                    return self._fail(f"measured pose of {g.name} is not finite")
                positions[ga.pos] = xyz
                ga.quat = quat / np.linalg.norm(quat)
                ga.rotation = quat_to_matrix_one(ga.quat)
            elif ga.kind is not GroupKind.BASE_TWIST:
                missing = [j for j in ga.joint_names if j not in measured.joints]
                if missing:
                    return self._fail(f"measured state lacks joints {missing[:4]} of {g.name}")
                values = np.array([measured.joints[j] for j in ga.joint_names], dtype=float)
                if not np.all(np.isfinite(values)):
                    return self._fail(f"measured state of {g.name} is not finite")
                positions[ga.axes] = values
        bad = self.position_axes & ((positions < self._check_lo - self.MEASURED_SLACK) |
                                    (positions > self._check_hi + self.MEASURED_SLACK))
        if np.any(bad):
            i = int(np.argmax(bad))
            return self._fail(f"axis {i} measured at {positions[i]:.4f} is outside its limits "
                              f"[{self.limits[i].position_min}, {self.limits[i].position_max}]: move it inside first")
        self.limiter.reset(positions)
        if self._ik is not None:
            self._ik.initialize(positions)
        if self._guard is not None:
            self._guard.reset(positions)
        self._before = (positions.copy(), np.zeros(len(positions)), np.zeros(len(positions)))
        if math.isnan(self._tick_time) and self._last_tick is not None:
            self._tick_time = self._last_tick
        for ga in self.groups:
            ga.last_inside_target = None
        self._initialized = True
        return True

    def _fail(self, text: str) -> bool:
        self.last_fault = text
        return False

    def _fault(self, code: StatusCode, kind: Intervention, text: str) -> None:
        if self.state is not ExecutorState.FAULT:
            self._count(kind)
        self.state, self._fault_code, self.last_fault = ExecutorState.FAULT, code, text
        self.timing.clear()

    def tick(self, now: float, measured: MeasuredState | None = None) -> list[GroupCommand] | None:
        """One control period. Returns the commands to publish, or None when nothing may be commanded."""
        if measured is not None:
            self._measured = measured
        if self._last_tick is not None and now < self._last_tick:
            # The clock jumped backwards (a simulation reset, a replayed bag looping): plan times and the
            # stamps of earlier chunks no longer mean anything. Start over from the new time.
            self.timing.clear()
            self._last_t_obs = self._last_chunk_id = None
            self.watchdogs.arm(now)
            self.watchdogs.last_chunk_time = None
            self.last_fault = f"clock jumped back by {self._last_tick - now:.3f} s: plan dropped"
        if self._last_tick is None or now < self._last_tick:
            self.timing.reset(now)
        self._last_tick = now
        tau = self.timing.clock.tau
        self.timing.advance(now)
        if self.state is ExecutorState.RUNNING and not self.plan.empty:  # the robot is executing chunk steps
            self.executed_plan_s += max(0.0, self.timing.clock.tau - tau)
        m = self._measured
        if m is None or self.state is ExecutorState.IDLE:
            return None
        if not self._initialized and not self._initialize(m):
            self.status_code = StatusCode.HALT_STALE_OBSERVATION
            return None

        codes = self._pending
        self._pending = set()
        halt = self._halt_condition(now, m)
        if halt is not None and halt != self._halt:
            self.timing.clear()
            if halt in (StatusCode.HALT_CHUNK_TIMEOUT, StatusCode.HALT_STALE_OBSERVATION):
                self._count(Intervention.CHUNK_TIMEOUT if halt is StatusCode.HALT_CHUNK_TIMEOUT
                            else Intervention.STALE_OBSERVATION)
                self.last_fault = STATUS_TEXT[halt]
        self._halt = halt
        if halt is not None:
            self._awaiting_first_command = None

        lim = self.limiter
        self._tick_time = self._take_up_sent_path(now)
        self._before = (lim.p.copy(), lim.v.copy(), lim.a.copy())
        n = len(self.limits)
        brake = np.zeros(n, dtype=bool)
        target_p, target_v, target_a = lim.p.copy(), np.zeros(n), np.zeros(n)
        if self._has_rotation:
            target_p[self.rotation_axes] = 0.0
            lim.p[self.rotation_axes] = 0.0  # rotation axes move in a chart centred on the commanded orientation
        if halt is not None or self.plan.empty:
            brake[:] = True
        else:
            value, rate, rate2 = self.timing.sample()
            if not math.isfinite(value.sum() + rate.sum() + rate2.sum()):
                self._fault(StatusCode.HALT_NONFINITE, Intervention.NONFINITE, "plan produced a non-finite target")
                brake[:] = True
            else:
                self._targets(value, rate, rate2, target_p, target_v, target_a, codes)
                if self._ik is not None:
                    collision_scale = self._guard.scale() if self._guard is not None else 1.0
                    if collision_scale < 1.0:
                        self._note(Intervention.COLLISION_DECELERATE, codes)
                    self._ik.targets(value, rate, rate2, lim, target_p, target_v, target_a, brake,
                                     lambda kind: self._note(kind, codes), collision_scale)
        if self._ik is not None and brake.all():
            self._ik.brake()
        if self._guard is not None:
            self._slow_near_collision(target_p, target_v, target_a, brake, codes)
        previous = lim.p.copy()
        previous_state = (previous, lim.v.copy(), lim.a.copy())
        report = lim.step(target_p, target_v, brake, target_a)
        self._braked = brake | report.braked_for_bounds
        if self._stop_checks is not None:
            refused, fault = self._stop_checks.refuse(lim, previous_state, target_p, target_v, target_a, brake,
                                                      lambda kind: self._note(kind, codes))
            self._braked |= refused
            self.last_fault = fault or self.last_fault
        if report.braked_for_bounds.any() or report.fallback:
            self._count(Intervention.DYNAMICS_LIMIT)
            codes.add(StatusCode.LIMITED_DYNAMICS)
        if (np.abs(lim.p - previous) > self._step_cap).any():
            self._count(Intervention.STEP_LIMIT)
            codes.add(StatusCode.LIMITED_STEP)
            lim.reset(previous)  # safety net, unreachable with valid limits: hold instead of jumping
        finite = math.isfinite(lim.p.sum() + lim.v.sum() + lim.a.sum())
        if not finite or ((lim.p < self._check_lo) | (lim.p > self._check_hi)).any():
            lim.reset(np.where(np.isfinite(previous), previous, 0.0))
            self._fault(StatusCode.HALT_NONFINITE, Intervention.NONFINITE, "limiter produced an invalid command")
        if self._ik is not None:
            self._ik.follow_joints(lim.p, lim.v, lim.a, self._braked)
        if self._has_rotation:
            for ga in self._other_groups:
                if ga.kind is GroupKind.EE_POSE:  # R ← R · exp(step), the step being in the tool frame
                    ga.quat = turned(ga.quat, lim.p[ga.rot])
                    ga.rotation = None  # derived on demand from ga.quat
            lim.p[self.rotation_axes] = 0.0
        if self._has_velocity:
            lim.p[self.velocity_axes] = 0.0

        self._update_state(halt, now, m, codes)
        if self._awaiting_first_command is not None and self.state is ExecutorState.RUNNING:
            self.observation_to_command_s = now - self._awaiting_first_command
            self._awaiting_first_command = None
        return self._commands()

    def _slow_near_collision(self, target_p: np.ndarray, target_v: np.ndarray, target_a: np.ndarray,
                             brake: np.ndarray, codes: set[StatusCode]) -> None:
        """Inside the proximity band, moving closer: the guarded axes take only part of their step."""
        scale = self._guard.scale()
        if scale >= 1.0 or brake.all():
            return
        m, p = self._guard.mask & ~self._servo_axes, self.limiter.p  # arms: slowed in the IK stage
        if not m.any():
            return
        target_p[m] = p[m] + scale * (target_p[m] - p[m])
        target_v[m] *= scale
        target_a[m] *= scale
        self._note(Intervention.COLLISION_DECELERATE, codes)

    def _take_up_sent_path(self, now: float) -> float:
        """This tick's time on the command path. After missed ticks, the controllers have run on along the
        path last sent: the command state of their axes becomes theirs at now (past its end: its end, at
        rest), so that the next path continues from where the robot is commanded to be. Only while nothing
        else has moved the command since. Not from the measured state: a position servo commanded to where
        its arm sags under gravity lets it drop."""
        sent, self._sent = self._sent, None
        lim, jtc = self.limiter, self._jtc_axes
        if sent is None or not (np.array_equal(sent.positions[1, jtc], lim.p[jtc])
                                and np.array_equal(sent.velocities[1, jtc], lim.v[jtc])):
            return now
        ticks = max(sent.ticks_since(now), 1)
        if ticks > 1:
            p, v, a = sent.state(ticks)
            lim.p[jtc], lim.v[jtc], lim.a[jtc] = p[jtc], v[jtc], a[jtc]
            self.missed_ticks += ticks - 1
        return sent.start_s + ticks * self.period_s

    def horizon(self, follow_points: int) -> Horizon:
        """The path for the JointTrajectoryControllers this tick (call after tick; see core/horizon.py).

        Point 0: the command state at this tick's time; point 1: this tick's command; then follow_points - 1
        commands of a second limiter rolled forward along the plan through the same target stage (so every
        point respects the same limits as the ticks themselves; halted or without a plan, it brakes); then
        the fastest stop to rest. Remembered as what the controllers run until the next tick. EE orientation
        axes hold and velocity axes carry zero positions (JTC groups have neither). Records no intervention.
        """
        lim = self.limiter
        if self._preview_limiter is None:
            self._preview_limiter = MotionLimiter(self.limits, self.velocity_axes, self.period_s,
                                                  servo_axes=self._servo_axes)
        shadow = self._preview_limiter
        shadow.p, shadow.v, shadow.a = lim.p.copy(), lim.v.copy(), lim.a.copy()
        n = len(self.limits)
        ps, vs, as_ = [self._before[0], lim.p.copy()], [self._before[1], lim.v.copy()], [self._before[2], lim.a.copy()]
        halted = self._halt is not None or self.state in HALTED_STATES or self.state is ExecutorState.IDLE
        brake = np.full(n, halted or self.plan.empty) | self._preview_brake
        for k in range(1, follow_points):
            target_p, target_v, target_a = shadow.p.copy(), np.zeros(n), np.zeros(n)
            target_p[self.rotation_axes] = shadow.p[self.rotation_axes] = 0.0
            if not brake.all():
                value, rate, rate2 = self.timing.sample(k)
                if math.isfinite(value.sum() + rate.sum() + rate2.sum()):
                    self._targets(value, rate, rate2, target_p, target_v, target_a, None, shadow.p)
                    target_p[self.rotation_axes] = 0.0
                else:
                    brake[:] = True
            shadow.step(target_p, target_v, brake, target_a)
            ps.append(shadow.p.copy())
            vs.append(shadow.v.copy())
            as_.append(shadow.a.copy())
        shadow.p[self.rotation_axes] = 0.0
        stop_p, stop_v, stop_a = shadow.stop_path(self.period_s)
        out_p, out_v, out_a = np.vstack([*ps, stop_p]), np.vstack([*vs, stop_v]), np.vstack([*as_, stop_a])
        out_p[:, self.velocity_axes] = 0.0
        out_p[:, self.rotation_axes] = 0.0
        out_v[-1], out_a[-1] = 0.0, 0.0  # at rest to the last digit: a stock controller refuses a moving end
        self._sent = Horizon(self._tick_time, self.period_s, out_p, out_v, out_a)
        return self._sent

    def _halt_condition(self, now: float, m: MeasuredState) -> StatusCode | None:
        if self.state is ExecutorState.ESTOP:
            return StatusCode.HALT_ESTOP
        if self.state is ExecutorState.FAULT:
            return self._fault_code
        if self.state is ExecutorState.PAUSED:
            return StatusCode.PAUSED
        tracking = self._tracking_fault(now, m)
        if tracking:
            self._fault(StatusCode.HALT_TRACKING_ERROR, Intervention.TRACKING_ERROR, tracking)
            return StatusCode.HALT_TRACKING_ERROR
        # Stale data or no chunk: those reasons, not "not following".
        halt = self.watchdogs.check(now, m.stamp, self.timing.clock.nominal)
        if halt is not None:
            return halt
        stalled = self._not_following(now, m) if self.state is ExecutorState.RUNNING else ""
        if stalled:
            self._fault(StatusCode.HALT_NOT_FOLLOWING, Intervention.NOT_FOLLOWING, stalled)
            return StatusCode.HALT_NOT_FOLLOWING
        return None

    def _tracking_fault(self, now: float, m: MeasuredState) -> str:
        joints, commanded = m.joints, self.limiter.p.tolist()
        for ga in self.tracked_groups:
            g = ga.group
            if ga.kind is GroupKind.EE_POSE and ga.ik is None:
                pose = m.poses.get(g.name)
                if pose is None:
                    error = math.inf
                else:
                    (x, y, z), (cx, cy, cz) = list(pose[0]), commanded[ga.pos]
                    error = math.sqrt((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2)
            else:
                error = max(abs(joints.get(j, math.inf) - c)
                            for j, c in zip(ga.joint_names, commanded[ga.axes], strict=True))
            error = error if error == error else math.inf  # NaN or missing measurement: unbounded error
            if self.watchdogs.tracking(now, g.name, error, g.tracking_tolerance):
                return (f"{g.name}: measured state is {error:.3f} {g.unit} from the command "
                        f"(tolerance {g.tracking_tolerance}) for {self.config.watchdog.tracking_grace_s} s")
        return ""

    def _not_following(self, now: float, m: MeasuredState) -> str:
        """An arm whose measured joints all stand while its command moves: its controller drops the commands.
        Grippers are left out: one closing on an object stalls by design."""
        if self.config.watchdog.follow_window_s <= 0 or now - m.stamp > 2.0 / self.config.control_hz:
            return ""  # off, or a late measurement that cannot show progress yet
        commanded = self.limiter.p
        for ga in self.groups:
            g = ga.group
            if ga.kind is not GroupKind.JOINT_POSITION and ga.ik is None:
                continue
            measured = np.array([m.joints.get(j, math.nan) for j in ga.joint_names])
            problem = self.watchdogs.following(now, g.name, commanded[ga.axes], measured)
            if problem:
                return (f"{g.name}: the controller on {g.output.topic} does not follow ({problem}). A stock "
                        "JointTrajectoryController drops a trajectory whose last point moves unless "
                        "allow_nonzero_velocity_at_trajectory_end is true (jtc_mode stream), and one for "
                        "joints it does not own; see its log")
        return ""

    def _targets(self, value: np.ndarray, rate: np.ndarray, rate2: np.ndarray, target_p: np.ndarray,
                 target_v: np.ndarray, target_a: np.ndarray, codes: set[StatusCode] | None,
                 current_p: np.ndarray | None = None) -> None:
        """Target stage: action-space plan sample → per-axis targets within position / range / box limits.

        codes None: a preview, which records no intervention; current_p: the command it starts from.
        """
        current_p = self.limiter.p if current_p is None else current_p
        target_p[self._direct_axes] = value[self._direct_cols]
        target_v[self._direct_axes] = rate[self._direct_cols]
        target_a[self._direct_axes] = rate2[self._direct_cols]
        for ga in self._other_groups:
            v, r = value[ga.cols], rate[ga.cols]
            if ga.kind is GroupKind.BASE_TWIST:
                vmax = self.limiter.velocity_max[ga.axes]
                clipped = np.minimum(np.maximum(v, -vmax), vmax)
                if (clipped != v).any():
                    self._note(Intervention.BASE_LIMIT, codes)
                target_v[ga.axes] = clipped
                target_a[ga.axes] = np.where(clipped == v, r, 0.0)
            elif ga.kind is GroupKind.EE_POSE:
                target_p[ga.pos], target_v[ga.pos], target_a[ga.pos] = v[:3], r[:3], rate2[ga.cols][:3]
                target_p[ga.rot] = tool_step_to(ga.quat, v[3:9])
        clamped = (target_p < self.safe_min) | (target_p > self.safe_max)
        if clamped.any():
            np.minimum(np.maximum(target_p, self.safe_min, out=target_p), self.safe_max, out=target_p)
            target_v[clamped] = 0.0
            target_a[clamped] = 0.0
            for ga in self.groups:
                if clamped[ga.axes].any():
                    kind = {GroupKind.GRIPPER: Intervention.GRIPPER_RANGE,
                            GroupKind.EE_POSE: Intervention.WORKSPACE_LIMIT}.get(ga.kind, Intervention.POSITION_LIMIT)
                    self._note(kind, codes)
        for ga in self._fk_groups:
            goal = target_p[ga.axes]
            x, y, z = ga.fk.position(goal).tolist()
            (x0, y0, z0), (x1, y1, z1) = ga.group.workspace.min_m, ga.group.workspace.max_m
            if x0 <= x <= x1 and y0 <= y <= y1 and z0 <= z <= z1:
                if codes is not None:
                    ga.last_inside_target = goal.copy()
            else:
                fallback = ga.last_inside_target
                target_p[ga.axes] = fallback if fallback is not None else current_p[ga.axes]
                target_v[ga.axes] = 0.0
                target_a[ga.axes] = 0.0
                self._note(Intervention.WORKSPACE_LIMIT, codes)
        # A velocity the axis could not stop from before its bound would only make the limiter brake.
        lim = self.limiter
        room = np.where(target_v > 0, lim.upper - target_p, target_p - lim.lower)  # inf for unbounded axes
        vcap = np.sqrt(self._two_acc * np.maximum(room, 0.0))
        capped = np.abs(target_v) > vcap
        if capped.any():
            np.minimum(np.maximum(target_v, -vcap, out=target_v), vcap, out=target_v)
            target_a[capped] = 0.0
        if (np.abs(target_p - current_p) > self._max_travel).any():
            self._note(Intervention.DYNAMICS_LIMIT, codes)

    def _update_state(self, halt: StatusCode | None, now: float, m: MeasuredState, codes: set[StatusCode]) -> None:
        if halt is not None:
            codes.add(halt)
            if self.state not in HALTED_STATES:
                self.state = ExecutorState.HOLDING if self.limiter.stopped() else ExecutorState.HALTING
        elif self.timing.ended():
            self.state = ExecutorState.HOLDING
        else:
            self.state = ExecutorState.RUNNING
        self.status_code = most_severe(codes)

    def _commands(self) -> list[GroupCommand]:
        out = []
        p, v, a = self.limiter.p.copy(), self.limiter.v.copy(), self.limiter.a.copy()
        for ga in self.groups:
            g, ax = ga.group, ga.axes
            if ga.ik is not None:
                out.append(GroupCommand(g.name, g.kind, ga.joint_names, p[ax], v[ax], a[ax]))
            elif ga.kind is GroupKind.EE_POSE:
                rotation = ga.matrix()
                out.append(GroupCommand(g.name, g.kind, g.axes, np.array(p[ga.pos].tolist() + ga.quat.tolist()),
                                        np.concatenate([v[ga.pos], rotation @ v[ga.rot]]),
                                        np.concatenate([a[ga.pos], rotation @ a[ga.rot]])))
            elif ga.kind is GroupKind.BASE_TWIST:
                out.append(GroupCommand(g.name, g.kind, g.axes, np.zeros(0), v[ax], a[ax]))
            else:
                out.append(GroupCommand(g.name, g.kind, g.axes, p[ax], v[ax], a[ax]))
        return out

    # ---------------------------------------------------------------- reporting
    def _note(self, kind: Intervention, codes: set[StatusCode] | None) -> None:
        """Record an intervention of the target stage (not during a preview, where codes is None)."""
        if codes is not None:
            self._count(kind)
            codes.add(INTERVENTION_STATUS[kind])

    def _count(self, kind: Intervention) -> None:
        self.counters[kind] += 1
        if kind in (Intervention.REJECTED_CHUNK, Intervention.NONFINITE):
            self._pending.add(StatusCode.CHUNK_REJECTED)

    def status(self, now: float) -> ExecutorSnapshot:
        start, dt, committed = self.timing.committed()
        remaining = self.timing.remaining_steps()
        last_chunk = self.watchdogs.last_chunk_time
        running = self.state in (ExecutorState.RUNNING, ExecutorState.HOLDING, ExecutorState.HALTING)
        return ExecutorSnapshot(
            stamp=now, state=self.state, status_code=self.status_code, status_text=STATUS_TEXT[self.status_code],
            active_chunk_id=self.plan.chunk_id, remaining_steps=remaining,
            chunk_requested=running and remaining <= self.config.plan.request_threshold_steps,
            committed_names=self.contract.action_names, committed_dt_s=dt, committed_start=start,
            committed_values=committed, interventions={k.value: v for k, v in self.counters.items()},
            last_fault=self.last_fault, chunk_id=self._last_chunk_id,
            chunk_age_s=now - last_chunk if last_chunk is not None else math.nan,
            chunk_arrival_latency_s=self.chunk_arrival_latency_s,
            observation_to_command_s=self.observation_to_command_s, arm_state=self._arm_state(),
            speed_scale=self.timing.speed_scale, plan_rate=self.timing.clock.rate, plan_lag_s=self.timing.lag_s())

    def _arm_state(self) -> dict[str, str]:
        state = {}
        for arm in self._ik.arms if self._ik is not None else ():
            state[f"{arm.group.name}/condition"] = f"{arm.condition:.2f}"
            state[f"{arm.group.name}/ik"] = arm.ik_status.value
            state[f"{arm.group.name}/singularity"] = arm.singularity.value
        if self._guard is not None:
            state["self_collision_distance_m"] = f"{self._guard.distance_m:.4f}"
        return state

    @property
    def initialized(self) -> bool:
        """Whether a command state exists (taken from the measured state once started)."""
        return self._initialized

    @property
    def command_positions(self) -> np.ndarray:
        return self.limiter.p.copy()

    def ik_poses(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Commanded tip pose (xyz, quaternion x y z w) of each arm through IK, in its base frame."""
        return self._ik.poses() if self._ik is not None else {}
