"""Receding-horizon executor: chunks in, limited commands out, one deterministic tick at a time.

Clock-agnostic: every call takes `now` in seconds on the same clock as chunk stamps (ROS time, sim time
or a test's). Per tick: watchdogs → plan sample → target stage (finite check, position limits with
margin, workspace, gripper range, base velocity) → motion stage (Ruckig jerk limiting that never leaves
position bounds, then the max-step cap) → e-stop / pause / fault gate (smooth halt) → commands.
Workspace and gripper checks act on the target, before jerk limiting, so that they never make the
command jump.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from wall_oss_ros.core.chunk import Chunk, ChunkRejectedError, absolute_targets, check_chunk
from wall_oss_ros.core.contract import GroupKind, RobotContract
from wall_oss_ros.core.executor_axes import AxisLayout
from wall_oss_ros.core.executor_types import (
    ChunkOutcome,
    ExecutorConfig,
    ExecutorSnapshot,
    GroupCommand,
    MeasuredState,
)
from wall_oss_ros.core.horizon import Horizon
from wall_oss_ros.core.ik_stage import IkArm, IkStage, arm_ik
from wall_oss_ros.core.plan import Plan
from wall_oss_ros.core.plan_clock import PlanClock
from wall_oss_ros.core.retiming import Retimer
from wall_oss_ros.core.rotations import turned
from wall_oss_ros.core.safety.collision_guard import CollisionGuard
from wall_oss_ros.core.safety.follow_checks import FollowChecks
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
from wall_oss_ros.core.sent_path import SentPath
from wall_oss_ros.core.stop_checks import StopChecks
from wall_oss_ros.core.target_stage import TargetStage
from wall_oss_ros.core.timed_plan import TimedPlan

HALTED_STATES = (ExecutorState.ESTOP, ExecutorState.FAULT, ExecutorState.PAUSED)


class Executor:
    """Owns the command state; everything that changes it goes through tick() or the commands from outside."""

    def __init__(self, contract: RobotContract, config: ExecutorConfig | None = None) -> None:
        self.contract = contract
        self.config = config = config or ExecutorConfig()
        self.period_s = 1.0 / config.control_hz
        self.layout = lay = AxisLayout(contract, self.period_s, config.step_cap_factor)
        self.groups, self.limits = lay.groups, lay.limits
        self.limiter = MotionLimiter(lay.limits, lay.velocity_axes, self.period_s, servo_axes=lay.servo_axes)
        self._targets = TargetStage(lay, self.limiter.lower, self.limiter.upper)
        arms, start = [], 0
        for ga in self.groups:
            if ga.ik is not None:
                arms.append(IkArm(ga.group, ga.cols, ga.axes, slice(start, start + 6), arm_ik(ga.group)))
                start += 6
        self._ik = IkStage(arms, self.period_s) if arms else None
        self._guard = (CollisionGuard(contract.self_collision, lay.axis_joints)
                       if contract.self_collision is not None else None)
        self._stop_checks = (StopChecks(self._ik, self._guard, self.period_s)
                             if self._ik is not None or self._guard is not None else None)
        self._braked = np.zeros(lay.n, dtype=bool)  # axes the last step braked (for the IK stage)
        # Horizon mode: the path sent to the JointTrajectoryControllers, whose preview brakes the arms through IK
        # and everything the collision guard watches.
        preview_brake = lay.servo_axes | self._guard.mask if self._guard is not None else lay.servo_axes.copy()
        self._path = SentPath(lay, self._targets, self.period_s, preview_brake)
        self._has_rotation, self._has_velocity = bool(lay.rotation_axes.any()), bool(lay.velocity_axes.any())
        self.plan = Plan(lay.continuous, config.plan)
        self.timing = TimedPlan(self.plan, PlanClock(config.speed_scale, config.speed_scale_rate_per_s),
                                Retimer(*lay.retimed_columns()) if config.retime else None,
                                lay.velocity_columns(), self.period_s)
        self.watchdogs = Watchdogs(config.watchdog)
        self._follow = FollowChecks(lay, self.watchdogs, config.control_hz)
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
        # Horizon mode: this tick's time on the path sent, and the command state before its step (point 0 of the
        # next path).
        self._tick_time = math.nan
        self._before = (self.limiter.p.copy(), self.limiter.v.copy(), self.limiter.a.copy())
        self._awaiting_first_command: float | None = None  # t_obs of a merged chunk not yet commanded
        self.observation_to_command_s = math.nan  # t_obs of the latest merged chunk → its first command [s]
        self.chunk_arrival_latency_s = math.nan  # t_obs of the latest accepted chunk → its arrival [s]
        self.executed_plan_s = 0.0  # plan time executed (state RUNNING, a plan to follow) since construction [s]
        self.chunks_accepted = 0

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
        self.layout.anchor(self.limiter.p, self.limiter.v, self.limiter.a, value, rate, rate2)
        if self._ik is not None:
            self._ik.anchor(value, rate, rate2)  # the IK stage's Cartesian command
        return value, rate, rate2

    # ---------------------------------------------------------------- control tick
    def _initialize(self, measured: MeasuredState) -> bool:
        """Command state := measured state. Refuses a robot outside its limits (never command there)."""
        try:
            positions = self.layout.take_measured(measured)
        except ValueError as exc:
            return self._fail(str(exc))
        self.limiter.reset(positions)
        if self._ik is not None:
            self._ik.initialize(positions)
        if self._guard is not None:
            self._guard.reset(positions)
        self._before = (positions.copy(), np.zeros(len(positions)), np.zeros(len(positions)))
        if math.isnan(self._tick_time) and self._last_tick is not None:
            self._tick_time = self._last_tick
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
        note = functools.partial(self._note, codes=codes)
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
        self._tick_time = self._path.take_up(now, lim)
        self._before = (lim.p.copy(), lim.v.copy(), lim.a.copy())
        n = self.layout.n
        brake = np.zeros(n, dtype=bool)
        target_p, target_v, target_a = lim.p.copy(), np.zeros(n), np.zeros(n)
        if self._has_rotation:
            target_p[self.layout.rotation_axes] = 0.0
            lim.p[self.layout.rotation_axes] = 0.0  # rotation axes move in a chart centred on the commanded orientation
        if halt is not None or self.plan.empty:
            brake[:] = True
        else:
            value, rate, rate2 = self.timing.sample()
            if not math.isfinite(value.sum() + rate.sum() + rate2.sum()):
                self._fault(StatusCode.HALT_NONFINITE, Intervention.NONFINITE, "plan produced a non-finite target")
                brake[:] = True
            else:
                self._targets(value, rate, rate2, target_p, target_v, target_a, lim.p, note)
                if self._ik is not None:
                    collision_scale = self._guard.scale() if self._guard is not None else 1.0
                    if collision_scale < 1.0:
                        self._note(Intervention.COLLISION_DECELERATE, codes)
                    self._ik.targets(value, rate, rate2, lim, target_p, target_v, target_a, brake,
                                     note, collision_scale)
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
                                                      note)
            self._braked |= refused
            self.last_fault = fault or self.last_fault
        if report.braked_for_bounds.any() or report.fallback:
            self._count(Intervention.DYNAMICS_LIMIT)
            codes.add(StatusCode.LIMITED_DYNAMICS)
        if (np.abs(lim.p - previous) > self.layout.step_cap).any():
            self._count(Intervention.STEP_LIMIT)
            codes.add(StatusCode.LIMITED_STEP)
            lim.reset(previous)  # safety net, unreachable with valid limits: hold instead of jumping
        finite = math.isfinite(lim.p.sum() + lim.v.sum() + lim.a.sum())
        if not finite or ((lim.p < self.layout.check_lo) | (lim.p > self.layout.check_hi)).any():
            lim.reset(np.where(np.isfinite(previous), previous, 0.0))
            self._fault(StatusCode.HALT_NONFINITE, Intervention.NONFINITE, "limiter produced an invalid command")
        if self._ik is not None:
            self._ik.follow_joints(lim.p, lim.v, lim.a, self._braked)
        if self._has_rotation:
            for ga in self.layout.other_groups:
                if ga.kind is GroupKind.EE_POSE:  # R ← R · exp(step), the step being in the tool frame
                    ga.quat = turned(ga.quat, lim.p[ga.rot])
                    ga.rotation = None  # derived on demand from ga.quat
            lim.p[self.layout.rotation_axes] = 0.0
        if self._has_velocity:
            lim.p[self.layout.velocity_axes] = 0.0

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
        m, p = self._guard.mask & ~self.layout.servo_axes, self.limiter.p  # arms: slowed in the IK stage
        if not m.any():
            return
        target_p[m] = p[m] + scale * (target_p[m] - p[m])
        target_v[m] *= scale
        target_a[m] *= scale
        self._note(Intervention.COLLISION_DECELERATE, codes)

    def horizon(self, follow_points: int) -> Horizon:
        """The path for the JointTrajectoryControllers this tick (call after tick; core/sent_path.py), remembered
        as what they run until the next tick. Halted or without a plan, its preview brakes."""
        halted = self._halt is not None or self.state in HALTED_STATES or self.state is ExecutorState.IDLE
        return self._path.build(self._tick_time, self._before, self.limiter, follow_points,
                                halted or self.plan.empty, self.timing.sample)

    def _halt_condition(self, now: float, m: MeasuredState) -> StatusCode | None:
        if self.state is ExecutorState.ESTOP:
            return StatusCode.HALT_ESTOP
        if self.state is ExecutorState.FAULT:
            return self._fault_code
        if self.state is ExecutorState.PAUSED:
            return StatusCode.PAUSED
        tracking = self._follow.tracking_fault(now, m, self.limiter.p)
        if tracking:
            self._fault(StatusCode.HALT_TRACKING_ERROR, Intervention.TRACKING_ERROR, tracking)
            return StatusCode.HALT_TRACKING_ERROR
        # Stale data or no chunk: those reasons, not "not following".
        halt = self.watchdogs.check(now, m.stamp, self.timing.clock.nominal)
        if halt is not None:
            return halt
        stalled = self._follow.not_following(now, m, self.limiter.p) if self.state is ExecutorState.RUNNING else ""
        if stalled:
            self._fault(StatusCode.HALT_NOT_FOLLOWING, Intervention.NOT_FOLLOWING, stalled)
            return StatusCode.HALT_NOT_FOLLOWING
        return None

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
        lim = self.limiter
        return self.layout.commands(lim.p.copy(), lim.v.copy(), lim.a.copy())

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
    def missed_ticks(self) -> int:
        """Control periods without a tick, bridged by the path last sent (horizon mode)."""
        return self._path.missed_ticks

    @property
    def command_positions(self) -> np.ndarray:
        return self.limiter.p.copy()

    def ik_poses(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Commanded tip pose (xyz, quaternion x y z w) of each arm through IK, in its base frame."""
        return self._ik.poses() if self._ik is not None else {}
