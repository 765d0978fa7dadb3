"""Real-time chunking: the first d steps follow the committed prefix with guidance, not without."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test.policy.test_wall_oss_model import observation
from wall_oss_ros.policy.backend import RtcRequest
from wall_oss_ros.policy.rtc import SCHEDULES, guidance_weight, prefix_weights

COMMITTED = np.tile(np.array([0.3, -0.5, 0.8, 0.2, 0.1, -0.2, 0.7] * 2), (12, 1)) + 0.01 * np.arange(12)[:, None]


@pytest.mark.parametrize("delay", [1, 5])
def test_guidance_inpaints_the_committed_prefix(backend, delay):
    noise = backend.sample_noise()
    free = backend.infer(observation(), noise=noise).actions
    guided = backend.infer(observation(), rtc=RtcRequest(COMMITTED, delay), noise=noise)
    assert guided.rtc_prefix_steps == delay
    guided_error = np.abs(guided.actions[:delay] - COMMITTED[:delay]).max()
    free_error = np.abs(free[:delay] - COMMITTED[:delay]).max()
    assert free_error > 0.5  # the unguided model goes elsewhere
    # Guidance is soft (capped at β = 10), so a model whose velocity depends on its input lands close, not exactly.
    assert guided_error < 0.1 and guided_error < 0.1 * free_error
    assert np.all(np.isfinite(guided.actions))


def test_zero_delay_and_zero_schedule_change_nothing(backend):
    from dataclasses import replace

    noise = backend.sample_noise()
    free = backend.infer(observation(), noise=noise).actions
    original = backend.rtc_config
    try:
        backend.rtc_config = replace(original, schedule="zeros")
        same = backend.infer(observation(), rtc=RtcRequest(COMMITTED, 0), noise=noise).actions
    finally:
        backend.rtc_config = original
    np.testing.assert_allclose(same, free, atol=1e-6)


def test_bad_rtc_request_is_refused(backend):
    with pytest.raises(ValueError, match="shape"):
        backend.infer(observation(), rtc=RtcRequest(np.zeros((4, 3)), 2))
    with pytest.raises(ValueError, match="finite"):
        backend.infer(observation(), rtc=RtcRequest(np.full((4, 14), np.nan), 2))


@settings(max_examples=200)
@given(st.integers(1, 64), st.integers(0, 70), st.integers(0, 70), st.sampled_from(SCHEDULES))
def test_prefix_weights_shape(horizon, delay, committed, schedule):
    w = prefix_weights(horizon, delay, committed, schedule)
    assert w.shape == (horizon,) and np.all((w >= 0) & (w <= 1))
    k, d = min(committed, horizon), min(delay, committed, horizon)
    assert np.all(w[:d] == 1.0) and np.all(w[k:] == 0.0)
    if schedule in ("exp", "linear"):
        assert np.all(np.diff(w[d:k]) <= 1e-12)  # decays after the delay


@given(st.floats(0.0, 1.0), st.floats(0.1, 50.0))
def test_guidance_weight_is_bounded_by_beta(tau, beta):
    c = guidance_weight(tau, beta)
    assert 0.0 <= c <= beta
