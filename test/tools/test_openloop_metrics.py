"""Open-loop metrics against cases whose answer is known analytically."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wall_oss_ros.tools.openloop_metrics import EvaluatedChunk, compute_metrics, ground_truth

DT = 0.02
NAMES = ("a", "b")


def recorded(t: np.ndarray) -> np.ndarray:
    return np.stack([np.sin(t), 0.5 * t], axis=-1)


@settings(max_examples=30, deadline=None)
@given(offset=st.floats(-1, 1), n_chunks=st.integers(2, 6))
def test_a_constant_offset_is_measured_exactly(offset, n_chunks):
    chunks = []
    for i in range(n_chunks):
        t = 0.1 * i + DT * np.arange(16)
        chunks.append(EvaluatedChunk(0.1 * i, recorded(t) + offset, recorded(t)))
    m = compute_metrics(chunks, NAMES, DT)
    for name in NAMES:
        assert m["mae"][name] == pytest.approx(abs(offset), abs=1e-12)
        assert m["rmse"][name] == pytest.approx(abs(offset), abs=1e-12)
        assert m["boundary_jump_max"][name] == pytest.approx(0.0, abs=1e-9)  # chunks agree where they meet
    assert np.allclose(m["error_by_step"], abs(offset))
    # Same shape, shifted: the same jerk; b is a straight line: no jerk.
    assert m["jerk_predicted"]["a"] == pytest.approx(m["jerk_recorded"]["a"], rel=1e-6)
    assert m["jerk_predicted"]["b"] == pytest.approx(0.0, abs=1e-6)


def test_error_grows_with_horizon_step_for_a_frozen_prediction():
    """A policy that predicts 'stay where you are' on a ramp of slope 0.5: error k·dt·0.5 at step k."""
    t = DT * np.arange(10)
    truth = recorded(t)
    chunk = EvaluatedChunk(0.0, np.tile(truth[0], (10, 1)), truth)
    m = compute_metrics([chunk], NAMES, DT)
    steps = np.array(m["error_by_step"])
    np.testing.assert_allclose(2 * steps - np.abs(np.sin(t)), 0.5 * t, atol=1e-12)  # mean of |Δa| and |Δb|


def test_jump_at_takeover():
    old = EvaluatedChunk(0.0, np.zeros((20, 2)), np.zeros((20, 2)))
    new = EvaluatedChunk(0.1, np.full((20, 2), 0.3), np.zeros((20, 2)))
    m = compute_metrics([old, new], NAMES, DT)
    assert m["boundary_jump_max"]["a"] == pytest.approx(0.3)


def test_ground_truth_interpolates_and_is_nan_outside_the_record():
    times = np.array([0.0, 1.0, 2.0])
    values = np.array([[0.0], [1.0], [4.0]])
    out = ground_truth(times, values, np.array([-0.5, 0.5, 1.5, 2.5]))
    assert np.isnan(out[0, 0]) and np.isnan(out[3, 0])
    np.testing.assert_allclose(out[1:3, 0], [0.5, 2.5])


def test_dimensions_without_a_record_are_named():
    truth = np.column_stack([np.zeros(8), np.full(8, np.nan)])
    m = compute_metrics([EvaluatedChunk(0.0, np.zeros((8, 2)), truth)], NAMES, DT)
    assert m["dims_without_ground_truth"] == ["b"] and m["mae"]["b"] is None
