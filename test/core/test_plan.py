"""Chunk timeline: latency compensation, receding horizon, merge strategies, splices, rejections."""

from __future__ import annotations

import math

import numpy as np
import pytest

from test.support.robots import contract
from wall_oss_ros.core.chunk import Chunk, ChunkRejectedError, IntakeLimits, check_chunk
from wall_oss_ros.core.plan import MergeStrategy, Plan, PlanConfig

DT = 0.02


def plan(strategy: MergeStrategy = MergeStrategy.REPLACE, continuous: tuple[bool, ...] = (False, False),
         **kw: object) -> Plan:
    return Plan(np.array(continuous), PlanConfig(strategy=strategy, **kw))


def ramp(t_obs: float, h: int = 32, slope: tuple[float, float] = (1.0, -0.5)) -> np.ndarray:
    t = t_obs + DT * np.arange(h)
    return np.stack([slope[0] * t, slope[1] * t], axis=1)


REST = (np.zeros(2), np.zeros(2))


def test_latency_drops_past_steps_and_fraction_limits_the_horizon():
    p = plan(execute_fraction=0.8)
    used = p.merge(0, t_obs=1.0, dt_s=DT, targets=ramp(1.0), now=1.1, anchor=REST)
    n_exec = math.ceil(0.8 * 32)  # 26 steps may run
    past = int(np.sum(1.0 + DT * np.arange(n_exec) <= 1.1 + Plan.MIN_GAP_FRACTION * DT))
    assert used == n_exec - past
    assert p.end_time() == pytest.approx(1.0 + DT * (n_exec - 1))
    assert p.remaining_steps(1.1) == used
    # Every knot after the anchor is a chunk step at its own time t_obs + i·dt.
    np.testing.assert_allclose(p.values[p.anchors:], ramp(1.0)[n_exec - used:n_exec])


def test_lookahead_drops_more_steps():
    a, b = plan(), plan(lookahead_s=0.05)
    assert b.merge(0, 1.0, DT, ramp(1.0), 1.0, REST) < a.merge(0, 1.0, DT, ramp(1.0), 1.0, REST)


def test_all_steps_past_is_rejected():
    with pytest.raises(ChunkRejectedError, match="already past"):
        plan().merge(0, 1.0, DT, ramp(1.0, h=8), now=2.0, anchor=REST)


def test_replace_splice_is_c1():
    p = plan(MergeStrategy.REPLACE)
    p.merge(0, 1.0, DT, ramp(1.0), 1.0, REST)
    now = 1.2
    before = p.sample(now)
    p.merge(1, 1.15, DT, ramp(1.15, slope=(3.0, 2.0)), now, anchor=before)
    after = p.sample(now)
    np.testing.assert_allclose(after[0], before[0])
    np.testing.assert_allclose(after[1], before[1])  # same rate: no velocity jump at the splice
    np.testing.assert_allclose(p.values[-1], ramp(1.15, slope=(3.0, 2.0))[25])


def test_crossfade_moves_from_old_to_new_over_the_window():
    p = plan(MergeStrategy.CROSSFADE, crossfade_steps=4)
    p.merge(0, 1.0, DT, ramp(1.0), 1.0, REST)
    now = 1.1
    old_times = 1.1 + DT * np.arange(1, 9)
    old_values = np.stack([p.sample(t)[0] for t in old_times])
    new = ramp(1.1, slope=(2.0, 1.0))
    p.merge(1, 1.1, DT, new, now, p.sample(now))
    blended = p.values[p.anchors:][:8]
    w = np.clip((np.arange(8) + 1) / 5, 0, 1)
    w = w * w * (3 - 2 * w)
    np.testing.assert_allclose(blended, (1 - w)[:, None] * old_values + w[:, None] * new[1:9], atol=1e-12)
    np.testing.assert_allclose(p.values[p.anchors:][4:], new[5:26])  # past the window: the new chunk alone


def test_ensemble_is_the_act_weighted_mean():
    m = 0.5
    p = plan(MergeStrategy.ENSEMBLE, ensemble_decay=m, execute_fraction=1.0)
    a = ramp(1.0, slope=(1.0, 1.0))
    p.merge(0, 1.0, DT, a, 0.99, REST)
    b = a + 1.0  # second prediction of the same times, on the same grid
    p.merge(1, 1.0, DT, b, 0.99, p.sample(0.99))
    w_old, w_new = 1.0, math.exp(-m * 1)  # the oldest prediction weighs most (ACT)
    np.testing.assert_allclose(p.values[p.anchors:], (w_old * a + w_new * b) / (w_old + w_new), atol=1e-9)
    c = a + 2.0
    p.merge(2, 1.0, DT, c, 0.99, p.sample(0.99))
    w3 = math.exp(-m * 2)
    np.testing.assert_allclose(p.values[p.anchors:], (a + w_new * b + w3 * c) / (1 + w_new + w3), atol=1e-9)


def test_rtc_uses_the_chunk_as_is():
    p = plan(MergeStrategy.RTC)
    p.merge(0, 1.0, DT, ramp(1.0), 1.0, REST)
    new = ramp(1.1, slope=(-1.0, 4.0))
    p.merge(1, 1.1, DT, new, 1.1, p.sample(1.1))
    np.testing.assert_allclose(p.values[p.anchors:], new[1:26])


def test_continuous_joint_is_unwrapped_the_short_way():
    p = plan(continuous=(True, False))
    values = np.stack([np.full(10, -3.1), np.zeros(10)], axis=1)  # just across ±π from the anchor
    p.merge(0, 1.0, DT, values, 1.0, anchor=(np.array([3.1, 0.0]), np.zeros(2)))
    assert np.all(np.abs(p.values[p.anchors:, 0] - 3.1) < 0.2), p.values[:, 0]  # 3.18, not -3.1


def test_cubic_interpolation_is_c2_through_every_knot():
    p = plan()
    t_knots = 1.0 + DT * np.arange(12)
    values = np.stack([np.sin(3 * t_knots), np.cos(2 * t_knots)], axis=1)
    p.merge(0, 1.0, DT, values, 0.99, anchor=(values[0] - 0.01 * np.array([3 * np.cos(3.0), -2 * np.sin(2.0)]),
                                               np.array([3 * np.cos(3.0), -2 * np.sin(2.0)])))
    np.testing.assert_allclose([p.sample(t)[0] for t in t_knots[1:10]], values[1:10], atol=1e-12)
    eps = 1e-7
    for t in t_knots[1:9]:  # acceleration continuous across each knot
        before, after = p.sample_motion(t - eps)[2], p.sample_motion(t + eps)[2]
        np.testing.assert_allclose(before, after, atol=1e-3)


def test_committed_steps_are_the_future_knots():
    p = plan()
    p.merge(7, 1.0, DT, ramp(1.0), 1.0, REST)
    start, dt, values = p.committed(1.1)
    assert dt == DT and start > 1.1 and start == pytest.approx(1.0 + DT * math.ceil((1.1 - 1.0) / DT + 1e-9))
    assert len(values) == p.remaining_steps(1.1)


# ------------------------------------------------------------------ chunk intake against a contract
ALOHA = contract("aloha_bimanual")


def aloha_chunk(chunk_id: int = 0, t_obs: float = 10.0, **kw: object) -> Chunk:
    values = kw.pop("values", np.zeros((32, 14)))
    return Chunk(chunk_id, t_obs, kw.pop("dt_s", ALOHA.dt_s), kw.pop("names", ALOHA.action_names), values, **kw)


@pytest.mark.parametrize(("chunk", "now", "last", "kind", "message"), [
    (aloha_chunk(t_obs=10.5), 10.0, None, "rejected_chunk", "in the future"),
    (aloha_chunk(t_obs=8.0), 10.0, None, "rejected_chunk", "stale"),
    (aloha_chunk(t_obs=9.9), 10.0, (9.95, 3), "rejected_chunk", "out of order"),
    (aloha_chunk(chunk_id=3, t_obs=9.95), 10.0, (9.95, 3), "rejected_chunk", "duplicated"),
    (aloha_chunk(values=np.full((32, 14), np.nan)), 10.0, None, "nonfinite", "non-finite"),
    (aloha_chunk(values=np.zeros((32, 13)), names=ALOHA.action_names[:13]), 10.0, None, "rejected_chunk", "missing"),
    (aloha_chunk(names=(*ALOHA.action_names[:13], "left_arm/bogus")), 10.0, None, "rejected_chunk", "unknown"),
    (aloha_chunk(dt_s=0.033), 10.0, None, "rejected_chunk", "step duration"),
    (aloha_chunk(values=np.zeros((0, 14))), 10.0, None, "rejected_chunk", "shape"),
], ids=["future", "stale", "out-of-order", "duplicate", "nan", "missing-name", "unknown-name", "dt", "empty"])
def test_bad_chunks_are_rejected_with_a_reason(chunk, now, last, kind, message):
    last_t, last_id = last or (None, None)
    with pytest.raises(ChunkRejectedError, match=message) as info:
        check_chunk(chunk, ALOHA, now, last_t, last_id, IntakeLimits())
    assert info.value.kind == kind


def test_chunk_columns_follow_the_contract_whatever_the_order():
    order = np.random.default_rng(0).permutation(14)
    names = tuple(ALOHA.action_names[i] for i in order)
    values = np.tile(np.arange(14.0)[order], (4, 1))
    out = check_chunk(aloha_chunk(names=names, values=values, t_obs=10.0), ALOHA, 10.0, None, None, IntakeLimits())
    np.testing.assert_array_equal(out[0], np.arange(14.0))


def test_relative_values_invert_absolute_targets():
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from scipy.spatial.transform import Rotation

    from wall_oss_ros.core.chunk import absolute_targets, relative_values
    from wall_oss_ros.core.rotations import matrix_to_rot6d

    ee = contract("mobile_manipulator")

    @settings(max_examples=50, deadline=None)
    @given(st.integers(0, 2**31))
    def check(seed):
        rng = np.random.default_rng(seed)
        state, values = rng.normal(size=ee.action_dim), rng.normal(size=(6, ee.action_dim)) * 0.2
        for g in ("left_ee", "right_ee"):
            cols = ee.action_slice(g)
            state[cols.start + 3:cols.stop] = matrix_to_rot6d(Rotation.random(random_state=seed).as_matrix())
            values[:, cols.start + 3:cols.stop] = matrix_to_rot6d(
                Rotation.random(6, random_state=seed + 1).as_matrix())
        chunk = Chunk(0, 0.0, ee.dt_s, ee.action_names, values, ee.action_names, state)
        absolute = absolute_targets(values, chunk, ee)
        np.testing.assert_allclose(relative_values(absolute, state, ee.action_names, ee), values, atol=1e-9)

    check()
