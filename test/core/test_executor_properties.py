"""Properties that hold for ANY input: limits are never left, commands are always finite, e-stop stops."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test.support.executor_run import Recording, assert_path_within, axis_arrays, check_limits, measured_from_commands
from test.support.robots import contract, rest_action, rest_state
from wall_oss_ros.core.chunk import Chunk
from wall_oss_ros.core.executor import Executor
from wall_oss_ros.core.executor_types import ExecutorConfig, MeasuredState
from wall_oss_ros.core.plan import MergeStrategy, PlanConfig
from wall_oss_ros.core.safety.motion import stop_time_bound

# More examples for a soak run: WALL_OSS_ROS_PROPERTY_EXAMPLES=500 pytest test/core/test_executor_properties.py
EXAMPLES = int(os.environ.get("WALL_OSS_ROS_PROPERTY_EXAMPLES", "25"))
VALUE_KINDS = ("smooth", "jump", "random", "huge", "nan", "inf")


def chunk_values(kind: str, seed: int, rest: np.ndarray, horizon: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "smooth":
        phase = rng.uniform(0, 6.3, rest.shape)
        t = np.arange(horizon)[:, None] * 0.03
        return rest + rng.uniform(0, 1.5) * np.sin(phase + t * rng.uniform(0.5, 6))
    if kind == "jump":
        return np.tile(rest + rng.uniform(-4, 4, rest.shape), (horizon, 1))
    values = rng.uniform(-6, 6, (horizon, len(rest))) + rest
    if kind == "huge":
        values[rng.integers(horizon), rng.integers(len(rest))] = rng.choice([1e9, -1e12, 3e300])
    elif kind == "nan":
        values[rng.integers(horizon), rng.integers(len(rest))] = np.nan
    elif kind == "inf":
        values[rng.integers(horizon), rng.integers(len(rest))] = -np.inf
    return values


event = st.one_of(
    st.tuples(st.just("chunk"), st.sampled_from(VALUE_KINDS), st.integers(0, 2**31),
              st.floats(-1.5, 0.3), st.integers(1, 40)),
    st.tuples(st.just("tick"), st.integers(1, 30)),
    st.tuples(st.just("irregular"), st.floats(-0.2, 0.1)),
    st.tuples(st.sampled_from(["estop", "reset_estop", "start", "pause", "resume"])),
)


def run_events(name: str, events: list, strategy: MergeStrategy) -> tuple[Executor, Recording]:
    c = contract(name)
    ex = Executor(c, ExecutorConfig(plan=PlanConfig(strategy=strategy)))
    rest, base = rest_action(c), rest_state(c)
    rec = Recording()
    now, chunk_id = 0.0, 0

    def tick(advance: float = ex.period_s) -> None:
        nonlocal now
        now += advance
        was_idle = ex.state.name == "IDLE" or not ex._initialized
        out = ex.tick(now, measured_from_commands(ex, now, base) if ex._initialized else base.__class__(
            now, base.joints, base.poses))
        rec.add(out, restart=was_idle)

    tick()
    ex.start(now)
    for ev in events:
        kind = ev[0]
        if kind == "chunk":
            _, value_kind, seed, stamp_offset, horizon = ev
            chunk_id += 1
            values = chunk_values(value_kind, seed, rest, horizon)
            ex.on_chunk(Chunk(chunk_id, now + stamp_offset, c.dt_s, c.action_names, values,
                              state_names=c.action_names, state=rest), now)
            tick()
        elif kind == "tick":
            for _ in range(ev[1]):
                tick()
        elif kind == "irregular":
            tick(max(ev[1], -0.2))  # a late, early or backwards tick time: one period of command anyway
        elif kind == "estop":
            ex.estop()
        elif kind == "reset_estop":
            ex.reset_estop()
        elif kind == "start":
            ex.start(now)
        elif kind in ("pause", "resume"):
            ex.pause(kind == "pause", now)
    for _ in range(5):
        tick()
    return ex, rec


@pytest.mark.parametrize("name", ["aloha_bimanual", "mobile_manipulator", "tiago_dual"])
@pytest.mark.parametrize("strategy", [MergeStrategy.CROSSFADE, MergeStrategy.ENSEMBLE, MergeStrategy.REPLACE])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(event, min_size=1, max_size=25))
def test_any_input_gives_finite_commands_within_every_limit(name, strategy, events):
    ex, rec = run_events(name, events, strategy)
    check_limits(ex, rec)


@pytest.mark.parametrize("name", ["aloha_bimanual", "mobile_manipulator", "tiago_dual"])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(event.filter(lambda e: e[0] not in ("reset_estop", "start", "resume")),
                       min_size=1, max_size=15),
       extra_ticks=st.integers(0, 40))
def test_estop_reaches_zero_velocity_in_the_time_the_limits_allow_and_stays(name, events, extra_ticks):
    ex, _ = run_events(name, events, MergeStrategy.CROSSFADE)
    if not ex._initialized:
        return
    _, v0, a0 = axis_arrays(ex, ex._commands())  # state at the e-stop
    bound = stop_time_bound(v0, a0, ex.limiter.acceleration_max, ex.limiter.jerk_max)
    ex.estop()
    c = contract(name)
    base = rest_state(c)
    now = 1000.0
    for k in range(1, int(np.max(bound) / ex.period_s) + 3 + extra_ticks):
        now += ex.period_s
        out = ex.tick(now, measured_from_commands(ex, now, base))
        assert out is not None
        _, v, _ = axis_arrays(ex, out)
        stopped = k * ex.period_s >= bound + ex.period_s
        assert np.all(np.abs(v[stopped]) <= 1e-9), f"axes still moving after their stop bound: {v[stopped]}"
        # Late chunks change nothing while latched.
        ex.on_chunk(Chunk(99, now, c.dt_s, c.action_names, np.tile(rest_action(c) + 1.0, (8, 1))), now)
    assert ex.state.name == "ESTOP" and ex.limiter.stopped()


@pytest.mark.parametrize("name", ["aloha_bimanual", "mobile_manipulator", "tiago_dual"])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(event, min_size=1, max_size=20), points=st.integers(2, 12))
def test_any_horizon_stays_within_every_limit_and_ends_at_rest(name, events, points):
    """JTC horizon points: finite, inside position bounds, and their differences within v/a/j limits."""
    ex, _ = run_events(name, events, MergeStrategy.CROSSFADE)
    if not ex._initialized:
        return
    counters = dict(ex.counters)
    h = ex.horizon(points)
    p, v, a = h.positions, h.velocities, h.accelerations
    assert ex.counters == counters
    assert np.all(v[-1] == 0.0) and np.all(a[-1] == 0.0)  # a stock controller refuses a moving last point
    assert np.all(np.isfinite(p)) and np.all(np.isfinite(v)) and np.all(np.isfinite(a))
    pos = ex.layout.position_axes
    lo = np.array([x.position_min for x in ex.limits])[pos]
    hi = np.array([x.position_max for x in ex.limits])[pos]
    assert np.all(p[:, pos] >= lo - 1e-9) and np.all(p[:, pos] <= hi + 1e-9)
    lim = ex.limiter
    assert np.all(np.abs(v) <= lim.velocity_max * (1 + 1e-6) + 1e-9)
    assert_path_within(p[:, pos], (lim.velocity_max[pos], lim.acceleration_max[pos], lim.jerk_max[pos]), ex.period_s)


@pytest.mark.parametrize("name", ["aloha_bimanual", "mobile_manipulator", "tiago_dual"])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(st.tuples(st.sampled_from(("smooth", "jump", "random")), st.integers(0, 2**31)),
                       min_size=1, max_size=6),
       delays=st.lists(st.tuples(st.integers(1, 25), st.floats(-0.4, 0.4)), min_size=5, max_size=60),
       follow=st.integers(2, 12))
def test_the_path_the_controllers_run_stays_within_limits_through_any_tick_timing(name, chunks, delays, follow):
    """Horizon mode on a starved executor: ticks 1–25 periods apart (with jitter), each sending a path that
    replaces the last at its own tick time. What a trajectory controller runs — each path from its start
    until the next one's — is continuous where they meet and within the velocity and acceleration limits."""
    c = contract(name)
    ex = Executor(c, ExecutorConfig())
    rest, base, dt = rest_action(c), rest_state(c), ex.period_s
    now = dt
    ex.tick(now, base.__class__(now, base.joints, base.poses))
    ex.start(now)
    run = [ex.horizon(follow)] if ex.tick(now, measured_from_commands(ex, now, base)) else []
    for i, (periods, jitter) in enumerate(delays):
        if i < len(chunks):
            kind, seed = chunks[i]
            ex.on_chunk(Chunk(i + 1, now, c.dt_s, c.action_names, chunk_values(kind, seed, rest, 32),
                              state_names=c.action_names, state=rest), now)
        now += (periods + jitter) * dt
        measured = measured_from_commands(ex, now, base)
        if run and ex.initialized:  # a robot that tracks the path it runs perfectly: where it is on it now
            on_path = run[-1].state(round((now - run[-1].start_s) / dt))[0]
            joints = dict(measured.joints)
            for ga in ex.groups:
                if ex.layout.jtc_axes[ga.axes].all():
                    joints.update(zip(ga.joint_names, on_path[ga.axes].tolist(), strict=True))
            measured = MeasuredState(now, joints, measured.poses)
        if ex.tick(now, measured) is not None:
            run.append(ex.horizon(follow))
    assert len(run) > 1
    jtc = ex.layout.jtc_axes & ex.layout.position_axes
    executed = [run[0].positions[0, jtc]]
    for sent, nxt in itertools.pairwise(run):
        ticks = round((nxt.start_s - sent.start_s) / dt)
        np.testing.assert_allclose(nxt.positions[0, jtc], sent.state(ticks)[0][jtc], atol=1e-12)  # no step
        executed += [sent.state(k)[0][jtc] for k in range(1, ticks + 1)]
    executed += list(run[-1].positions[1:, jtc])
    assert_path_within(np.array(executed), (ex.limiter.velocity_max[jtc], ex.limiter.acceleration_max[jtc]), dt)
