"""A ~/run_policy goal's bookkeeping: which requests may run, how progress is counted, when and why a goal
ends."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wall_oss_ros.core.run_goal import (
    END_DURATION,
    END_ESTOP,
    END_FAULT,
    ExecutorCounts,
    RunGoal,
    RunRequest,
)
from wall_oss_ros.core.safety.status import ExecutorState

DT = 0.02


def counts(now: float, plan_s: float = 0.0, chunks: int = 0, state: ExecutorState = ExecutorState.RUNNING,
           fault: str = "", **interventions: int) -> ExecutorCounts:
    base = {"dynamics_limit": 0, "chunk_timeout": 0, "tracking_error": 0}
    return ExecutorCounts(now, state, plan_s, chunks, {**base, **interventions}, fault)


@given(instruction=st.text(max_size=5), duration=st.floats(allow_nan=True, allow_infinity=True),
       scale=st.floats(allow_nan=True, allow_infinity=True))
def test_a_request_runs_exactly_when_its_fields_make_sense(instruction, duration, scale):
    problem = RunRequest(instruction, duration, scale).problem()
    valid = bool(instruction.strip()) and math.isfinite(duration) and duration >= 0 and \
        (scale == 0.0 or 0.0 < scale <= 1.0)
    assert (problem == "") == valid, problem


def test_progress_counts_executed_plan_steps_chunks_and_interventions_since_the_goal_began():
    start = counts(100.0, plan_s=7.0, chunks=40, dynamics_limit=12)
    goal = RunGoal(RunRequest("fold the towel", 10.0, 0.5), start, DT, 0.5)
    p = goal.progress(counts(102.5, plan_s=7.0 + 1.2, chunks=52, dynamics_limit=15))
    assert p.elapsed_s == pytest.approx(2.5) and p.progress == pytest.approx(0.25)
    assert p.steps_executed == 60 and p.steps_total == 250  # 10 s at half speed: 5 s of plan, 250 steps
    assert p.chunks_accepted == 12 and p.interventions == 3 and p.last_intervention == "dynamics_limit"
    p = goal.progress(counts(103.0, plan_s=8.3, chunks=53, dynamics_limit=15, chunk_timeout=1))
    assert p.last_intervention == "chunk_timeout" and p.interventions == 4
    p = goal.progress(counts(103.5, plan_s=8.3, chunks=53, dynamics_limit=15, chunk_timeout=1))
    assert p.last_intervention == "chunk_timeout"  # the latest one stays named until another counts
    assert p.steps_executed == 65  # a paused plan clock adds no steps


def test_an_open_ended_goal_has_no_progress_share_and_never_times_out():
    goal = RunGoal(RunRequest("wipe", 0.0, 0.0), counts(0.0), DT, 1.0)
    p = goal.progress(counts(1e6, plan_s=5.0))
    assert p.progress == -1.0 and p.steps_total == 0
    assert goal.ending(counts(1e6)) is None


def test_the_goal_ends_on_its_duration_and_on_a_fault_or_estop_first():
    goal = RunGoal(RunRequest("stack the cups", 3.0, 0.0), counts(10.0), DT, 1.0)
    assert goal.ending(counts(12.99)) is None
    assert goal.ending(counts(13.0))[0] == END_DURATION
    reason, text = goal.ending(counts(11.0, state=ExecutorState.FAULT, fault="tracking error on left_arm"))
    assert reason == END_FAULT and "tracking error on left_arm" in text
    assert goal.ending(counts(20.0, state=ExecutorState.ESTOP))[0] == END_ESTOP  # over duration, still e-stop


def test_a_goal_needs_a_positive_step():
    with pytest.raises(ValueError, match="dt_s"):
        RunGoal(RunRequest("x", 1.0, 0.0), counts(0.0), 0.0, 1.0)
