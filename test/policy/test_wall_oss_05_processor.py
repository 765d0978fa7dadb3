"""WALL-OSS-0.5's state as prompt text and its image size, against the training format's definition: 512
equal bins over [-1, 1] of the quantile-normalised, clipped state (np.digitize over
linspace(-1, 1, 513)[:-1], minus one), in place of <|propri|> in the flow prompt; long side 448."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wall_oss_ros.policy.prompts import PROPRI_TOKEN, prompt
from wall_oss_ros.policy.wall_oss_05.processor_wall_oss_05 import (
    flow_prompt,
    long_side_size,
    normalize_quantiles,
    state_bins,
    state_text,
)


def test_bins_at_the_edges_and_past_the_quantiles():
    q01, q99 = np.zeros(7), np.full(7, 2.0)
    # raw: q01, the middle, q99, past both ends, just inside the first and last bins' starts
    raw = np.array([0.0, 1.0, 2.0, -5.0, 9.0, 1.0 / 256, 2.0 - 1.0 / 256])
    normalized = normalize_quantiles(raw, q01, q99)
    np.testing.assert_allclose(normalized, [-1, 0, 1, -1, 1, -1 + 1 / 256, 1 - 1 / 256])
    assert state_bins(normalized).tolist() == [0, 256, 511, 0, 511, 1, 511]


def test_a_constant_slot_and_a_non_finite_state():
    assert normalize_quantiles(np.array([0.5, 0.4]), np.array([0.5, 0.5]), np.array([0.5, 0.5])).tolist() == [-1, -1]
    with pytest.raises(ValueError, match=r"state slots \[1\] are not finite"):
        state_bins(np.array([0.0, np.nan]))


@given(st.lists(st.floats(-3.0, 3.0), min_size=1, max_size=26))
def test_every_value_has_its_bin(values):
    s = np.array(values)
    bins = state_bins(s)
    clipped = np.clip(s, -1.0, 1.0)
    assert np.all((bins >= 0) & (bins <= 511))
    lower = -1.0 + bins / 256.0  # the bin's start holds the value, the next start does not
    assert np.all(lower <= clipped + 1e-12) and np.all((clipped < lower + 1 / 256 + 1e-12) | (bins == 511))
    order = np.argsort(s, kind="stable")
    assert np.all(np.diff(bins[order]) >= 0)  # monotone


def test_the_state_text_replaces_proprioception_in_the_flow_prompt():
    text = state_text(np.array([0, 256, 511, 17]), active=np.array([True, True, True, False]))
    assert text == "0 256 511"
    views = ["front view", "right wrist view"]
    got = flow_prompt(views, "pick up the cup", 3, text)
    assert got == prompt(views, "pick up the cup", 3).replace(PROPRI_TOKEN, "0 256 511")
    assert "\nProprioception: 0 256 511\n<|im_end|>\n<|im_start|>assistant\n<|action|><|action|><|action|>" in got
    assert state_text(np.array([3, 4])) == "3 4"


@pytest.mark.parametrize(("size", "expected"), [((640, 480), (448, 336)), ((480, 640), (336, 448)),
                                                ((100, 30), (448, 134)), ((448, 448), (448, 448))])
def test_images_are_scaled_to_a_long_side_of_448(size, expected):
    assert long_side_size(*size) == expected
