"""The bookkeeping of one ~/run_policy goal (action/RunPolicy.action): whether it may start, how far it has
come, and when and why it ends. Numbers in, numbers out; the action server in ros/ wires it to the
executor and rclpy.action.

A goal's steps are the policy steps the plan clock advanced while the executor was executing a plan, so
they count what the robot did (a retimed or paused clock advances less), not wall time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from wall_oss_ros.core.safety.status import ExecutorState

# The action's result constants (RunPolicy.Result.END_*; a test checks they agree).
END_DURATION, END_CANCELED, END_PREEMPTED, END_FAULT, END_ESTOP, END_SHUTDOWN = range(6)


@dataclass(frozen=True)
class RunRequest:
    instruction: str
    duration_s: float  # 0: until cancelled
    speed_scale: float  # 0: keep the executor's

    def problem(self) -> str:
        """Why the goal cannot run ("" when it can)."""
        if not self.instruction.strip():
            return "the instruction is empty"
        if not (math.isfinite(self.duration_s) and self.duration_s >= 0.0):
            return f"duration_s must be 0 (until cancelled) or a positive number of seconds, got {self.duration_s}"
        if not (self.speed_scale == 0.0 or 0.0 < self.speed_scale <= 1.0):
            return f"speed_scale must be 0 (keep the current one) or in (0, 1], got {self.speed_scale}"
        return ""


@dataclass(frozen=True)
class ExecutorCounts:
    """What the goal reads off the executor each status period."""

    now: float  # the executor's clock [s]
    state: ExecutorState
    executed_plan_s: float  # plan time executed since the executor started [s], monotone
    chunks_accepted: int  # monotone
    interventions: Mapping[str, int]  # per kind, monotone
    last_fault: str


@dataclass(frozen=True)
class RunProgress:
    elapsed_s: float
    progress: float  # elapsed / duration in [0, 1]; -1 without a duration
    steps_executed: int
    steps_total: int  # 0 without a duration
    chunks_accepted: int
    interventions: int
    last_intervention: str


class RunGoal:
    def __init__(self, request: RunRequest, start: ExecutorCounts, dt_s: float, speed_scale: float) -> None:
        """speed_scale: the one the goal runs at (its own, or the executor's when it asks for none)."""
        if not dt_s > 0.0:
            raise ValueError(f"dt_s must be positive, got {dt_s}")
        self.request, self.start, self.dt_s, self.speed_scale = request, start, dt_s, speed_scale
        self._previous = dict(start.interventions)
        self.last_intervention = ""

    def _count(self, counts: ExecutorCounts) -> int:
        return sum(max(0, n - self.start.interventions.get(k, 0)) for k, n in counts.interventions.items())

    def progress(self, counts: ExecutorCounts) -> RunProgress:
        for kind, n in counts.interventions.items():  # the latest kind to have counted up
            if n > self._previous.get(kind, 0):
                self.last_intervention = kind
        self._previous = dict(counts.interventions)
        elapsed = max(0.0, counts.now - self.start.now)
        duration = self.request.duration_s
        return RunProgress(
            elapsed, min(1.0, elapsed / duration) if duration > 0 else -1.0,
            int((counts.executed_plan_s - self.start.executed_plan_s) / self.dt_s + 1e-9),
            int(duration * self.speed_scale / self.dt_s + 1e-9) if duration > 0 else 0,
            counts.chunks_accepted - self.start.chunks_accepted, self._count(counts), self.last_intervention)

    def ending(self, counts: ExecutorCounts) -> tuple[int, str] | None:
        """(END_*, text) once the executor's state or the clock ends the goal; None while it runs on."""
        if counts.state is ExecutorState.ESTOP:
            return END_ESTOP, "the e-stop latched: the executor halted the robot"
        if counts.state is ExecutorState.FAULT:
            return END_FAULT, f"the executor latched a fault: {counts.last_fault}"
        if self.request.duration_s > 0 and counts.now - self.start.now >= self.request.duration_s:
            return END_DURATION, f"{self.request.duration_s:g} s elapsed"
        return None
