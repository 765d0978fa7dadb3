"""Time scaling: the speed scale stretches the plan's clock (same path, 1/s as long), changes smoothly, and the
retimer slows infeasible chunks along their path instead of letting the follower limit-cycle around them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test.core.test_executor_properties import EXAMPLES, chunk_values
from test.support.executor_run import Recording, check_limits, measured_from_commands
from test.support.robots import contract, rest_action, rest_state
from wall_oss_ros.core.chunk import Chunk
from wall_oss_ros.core.executor import Executor
from wall_oss_ros.core.executor_types import ExecutorConfig, MeasuredState
from wall_oss_ros.core.plan import MergeStrategy, PlanConfig
from wall_oss_ros.core.plan_clock import PlanClock
from wall_oss_ros.core.safety.watchdog import WatchdogConfig
from wall_oss_ros.tools.motion_checks import swings

WAIST = 0  # left waist: action column and limiter axis of the ALOHA contract


# ---------------------------------------------------------------- the clock
def test_at_scale_one_plan_time_is_the_executor_clock_to_the_last_bit():
    clock = PlanClock()
    clock.reset(12.345)
    t = 12.345
    for k in range(1000):
        t += 0.01 + 1e-4 * math.sin(k)
        assert clock.advance(t) == 1.0
        assert clock.tau == t
    assert clock.plan_time(t - 0.3) == pytest.approx(t - 0.3, abs=1e-12)


@given(scale=st.floats(0.05, 1.0), new=st.floats(0.05, 1.0), rate=st.floats(0.5, 5.0))
@settings(max_examples=50, deadline=None)
def test_the_running_scale_moves_toward_a_new_one_at_its_rate_and_the_past_maps_back(scale, new, rate):
    clock = PlanClock(scale, rate)
    clock.reset(0.0)
    now, taus, times = 0.0, [0.0], [0.0]
    for _ in range(50):
        now += 0.01
        clock.advance(now)
        times.append(now)
        taus.append(clock.tau)
    assert clock.rate == scale and clock.tau == pytest.approx(0.5 * scale, abs=1e-9)
    clock.set_scale(new)
    previous = clock.nominal
    for _ in range(250):  # the history (5 s) still holds the first stamps
        now += 0.01
        clock.advance(now)
        assert abs(clock.nominal - previous) <= rate * 0.01 + 1e-12  # never a step faster than the rate
        previous = clock.nominal
    assert clock.nominal == new
    for t, tau in zip(times, taus, strict=True):  # stamps of the past map to the plan time they had
        assert clock.plan_time(t) == pytest.approx(tau, abs=1e-9)


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.01, math.nan, math.inf])
def test_a_speed_scale_outside_zero_to_one_is_refused(bad):
    with pytest.raises(ValueError, match="speed_scale"):
        ExecutorConfig(speed_scale=bad)
    ex = Executor(contract("aloha_bimanual"))
    with pytest.raises(ValueError, match="speed_scale"):
        ex.set_speed_scale(bad)
    assert ex.timing.speed_scale == 1.0


# ---------------------------------------------------------------- limits under any scale
scaled_event = st.one_of(
    st.tuples(st.just("chunk"), st.sampled_from(("smooth", "jump", "random", "nan")), st.integers(0, 2**31),
              st.floats(-0.3, 0.0), st.integers(2, 40)),
    st.tuples(st.just("tick"), st.integers(1, 40)),
    st.tuples(st.just("scale"), st.floats(0.02, 1.0)),
)


@pytest.mark.parametrize("name", ["aloha_bimanual", "mobile_manipulator", "tiago_dual"])
@pytest.mark.parametrize("retime", [False, True])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scale=st.floats(0.02, 1.0), events=st.lists(scaled_event, min_size=1, max_size=25))
def test_any_speed_scale_and_any_change_of_it_keep_every_limit(name, retime, scale, events):
    c = contract(name)
    ex = Executor(c, ExecutorConfig(speed_scale=scale, speed_scale_rate_per_s=5.0, retime=retime))
    rest, base, rec = rest_action(c), rest_state(c), Recording()
    now, chunk_id = 0.01, 0
    ex.tick(now, MeasuredState(now, base.joints, base.poses))
    ex.start(now)
    for ev in [*events, ("tick", 20)]:
        if ev[0] == "chunk":
            chunk_id += 1
            ex.on_chunk(Chunk(chunk_id, now + ev[3], c.dt_s, c.action_names, chunk_values(ev[1], ev[2], rest, ev[4]),
                              state_names=c.action_names, state=rest), now)
        elif ev[0] == "scale":
            ex.set_speed_scale(ev[1])
        for _ in range(ev[1] if ev[0] == "tick" else 1):
            now += ex.period_s
            rec.add(ex.tick(now, measured_from_commands(ex, now, base)))
        snap = ex.status(now)
        assert 0.0 < snap.plan_rate <= 1.0 and snap.plan_lag_s >= 0.0
    assert check_limits(ex, rec) > 0


# ---------------------------------------------------------------- same path, 1/s as long
def _one_motion(scale: float) -> tuple[np.ndarray, np.ndarray]:
    """A feasible rest-to-rest waist motion of 0.6 rad in 1.5 s (one chunk), at a speed scale: (times, waist)."""
    c = contract("aloha_bimanual")
    ex = Executor(c, ExecutorConfig(speed_scale=scale, watchdog=WatchdogConfig(chunk_timeout_s=10.0),
                                    plan=PlanConfig(strategy=MergeStrategy.REPLACE, execute_fraction=1.0)))
    rest, base = rest_action(c), rest_state(c)
    steps = np.arange(int(1.5 / c.dt_s) + 1) * c.dt_s
    values = np.tile(rest, (len(steps), 1))
    values[:, WAIST] += 0.3 * (1 - np.cos(np.pi * steps / steps[-1]))
    values = np.vstack([values, np.tile(values[-1], (10, 1))])  # and hold there
    now = 0.01
    ex.tick(now, MeasuredState(now, base.joints, base.poses))
    ex.start(now)
    ex.tick(now + 0.01, measured_from_commands(ex, now + 0.01, base))
    now += 0.01
    ex.on_chunk(Chunk(1, now, c.dt_s, c.action_names, values, state_names=c.action_names, state=rest), now)
    times, waist = [], []
    while now < 0.02 + (steps[-1] + 0.5) / scale:
        now += ex.period_s
        ex.tick(now, measured_from_commands(ex, now, base))
        times.append(now - 0.02)
        waist.append(ex.command_positions[WAIST] - rest[WAIST])
    return np.array(times), np.array(waist)


@pytest.mark.parametrize("scale", [0.25, 0.5, 0.8])
def test_a_feasible_plan_at_scale_s_takes_the_same_path_in_one_over_s_the_time(scale):
    t1, q1 = _one_motion(1.0)
    ts, qs = _one_motion(scale)
    # The path: both runs pass every level of the motion, in order, and end at the same place.
    assert q1[-1] == pytest.approx(0.6, abs=1e-6) and qs[-1] == pytest.approx(0.6, abs=1e-6)
    for q in (q1, qs):  # monotonic, no swing: at most a settle under 1 mrad as the command comes to rest
        assert np.all(np.diff(q) >= -1e-3) and q.max() <= 0.6 + 1e-3
    # The timing: each level is reached 1/s as late. Tolerance: the jerk-limited servo's lag behind the plan
    # (a/j · gain-limited, about 0.1 s at full speed here; it only shrinks when slower), so two ticks plus
    # a tenth of a second of lag at scale 1, stretched.
    for level in (0.05, 0.15, 0.3, 0.45, 0.55):
        at_1 = float(np.interp(level, q1, t1))
        at_s = float(np.interp(level, qs, ts))
        assert at_s == pytest.approx(at_1 / scale, abs=0.02 + 0.1 / scale), f"level {level}"
    # Geometrically the same path: at each time t·(1/s) the scaled run is where the full-speed run was at t,
    # within the servo's lag at full speed (the slower run lags less).
    resampled = np.interp(t1 / scale, ts, qs)
    lag = np.max(np.abs(np.interp(t1, t1, q1) - np.interp(t1 - 0.1, t1, q1)))
    assert np.max(np.abs(resampled - q1)) <= lag + 1e-3


def test_status_reports_the_committed_steps_on_the_stretched_clock():
    c = contract("aloha_bimanual")
    ex = Executor(c, ExecutorConfig(speed_scale=0.5, retime=True))
    rest, base = rest_action(c), rest_state(c)
    now = 0.01
    ex.tick(now, MeasuredState(now, base.joints, base.poses))
    ex.start(now)
    for _ in range(5):
        now += 0.01
        ex.tick(now, measured_from_commands(ex, now, base))
    t_obs = now - 0.05
    assert ex.on_chunk(Chunk(1, t_obs, c.dt_s, c.action_names, np.tile(rest, (32, 1)),
                             state_names=c.action_names, state=rest), now).accepted
    snap = ex.status(now)
    assert snap.speed_scale == 0.5 and snap.committed_dt_s == pytest.approx(2 * c.dt_s)
    # Step i of the chunk runs at t_obs + i·dt/s: the first committed step is the first one after now.
    steps = t_obs + np.arange(32) * c.dt_s / 0.5
    assert snap.committed_start == pytest.approx(steps[steps > now][0], abs=1e-9)
    n_exec = math.ceil(0.8 * 32)
    assert snap.remaining_steps == np.count_nonzero(steps[:n_exec] > now)


# ---------------------------------------------------------------- the infeasible sine
def _sine_run(retime: bool, seconds: float = 12.0, freq: float = 1.5, amp: float = 0.2,
              then: tuple[float, float] | None = None) -> dict[str, float]:
    """The waist told to follow a 1.5 Hz, 0.2 rad sine (119 % of its acceleration limit), a chunk every 60 ms
    from an observation 50 ms old, by a policy that continues the motion from where it saw the robot (the
    phase the robot had reached along the path then, as a closed-loop policy's next chunk starts from the
    observed state). Tracking error: the command against the sine at the phase the plan is at. then: (time,
    amplitude) from which the chunks continue the sine at another amplitude; the figures are from then on."""
    c = contract("aloha_bimanual")
    ex = Executor(c, ExecutorConfig(retime=retime))
    rest, base = rest_action(c), rest_state(c)
    now = 0.01
    ex.tick(now, MeasuredState(now, base.joints, base.poses))
    ex.start(now)
    errors, rates, k = [], [], 0
    switch = then[0] if then is not None else math.inf
    measured_from = min(switch, 3.0)
    while now < seconds:
        k += 1
        now = 0.01 + k * ex.period_s
        if now >= switch:
            amp = then[1]
        if k % 6 == 0:
            phase0 = ex.timing.clock.plan_time(now - 0.05)
            values = np.tile(rest, (32, 1))
            values[:, WAIST] += amp * np.sin(2 * np.pi * freq * (phase0 + c.dt_s * np.arange(32)))
            assert ex.on_chunk(Chunk(k, now - 0.05, c.dt_s, c.action_names, values, state_names=c.action_names,
                                     state=rest), now).accepted
        ex.tick(now, measured_from_commands(ex, now, base))
        if now >= measured_from:
            target = rest[WAIST] + amp * np.sin(2 * np.pi * freq * ex.timing.tau)
            errors.append(ex.command_positions[WAIST] - target)
            rates.append(ex.timing.clock.rate)
    e = np.array(errors)
    seconds_measured = len(e) * ex.period_s
    return {"std": float(e.std()), "max": float(np.abs(e).max()), "lag_s": ex.status(now).plan_lag_s,
            "sign_changes_per_s": np.count_nonzero(np.diff(np.sign(e)) != 0) / seconds_measured,
            "swings_per_s": swings(e, SWING_RAD) / seconds_measured, "rate": ex.timing.clock.rate,
            "rates": np.array(rates)}


SWING_RAD = 0.05  # a swing crosses a quarter of the sine's amplitude on both sides of the path


def test_an_infeasible_sine_is_followed_along_its_path_without_a_limit_cycle():
    chased, retimed = _sine_run(False), _sine_run(True)
    # Without retiming the follower swings at its limits around the target: from one side of it to the other
    # beyond 0.05 rad with the sine (3 times a second at 1.5 Hz), as far off as the motion is large.
    assert chased["std"] > 0.2 and chased["swings_per_s"] >= 2.5
    # Retimed (one rate per chunk keeping 70 % of a_max: the plan runs at about 0.8 of its speed): on the path
    # within the 0.03 rad (std), never swinging across it, its error changing sign no more often than the motion
    # reverses (2 per period at the retimed rate: the lag of the averaged feed-forward, not an oscillation of
    # its own), and the plan reports how far behind schedule it runs.
    assert retimed["std"] <= 0.03 and retimed["swings_per_s"] == 0.0
    assert retimed["sign_changes_per_s"] <= 2 * 1.5 * retimed["rate"] + 0.2
    assert 0.6 < retimed["rate"] < 0.9 and retimed["lag_s"] > 0.0


def test_a_clock_slowed_by_infeasible_chunks_comes_back_to_the_scale_with_feasible_ones():
    """The sine at 119 % of a_max for 3 s (the clock at about 0.8), then at half the amplitude (60 %, within the
    limits): the next chunks bring the clock back to the scale within half a second, on the path throughout."""
    run = _sine_run(True, seconds=5.0, then=(3.0, 0.1))
    rates = run["rates"]
    assert rates[0] < 0.9  # still slowed when the feasible chunks begin
    assert np.all(rates[50:] == 1.0)  # back at the scale 0.5 s later, and staying there
    assert np.all(np.diff(rates) >= -1e-9)  # rising, not hunting
    assert run["std"] <= 0.03 and run["swings_per_s"] == 0.0
