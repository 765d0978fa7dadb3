"""ControlGrid for any observation times, targets and instructions: frames on the grid of their episode,
each holding the newest observation formed by then (never a future one, never one older than the allowed
age) and the target interpolated at its time; every grid time in a tasked stretch is written or counted.

The stream is the shape ControlGrid reads from a RecordingStream (observations, then the targets and
instructions recorded up to each), in memory, so that hypothesis can draw any timing; real bags go
through it in test_bag_to_lerobot.py."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test.support.robots import contract
from wall_oss_ros.core.observation import Snapshot
from wall_oss_ros.tools.control_grid import STAMP_SLACK, ControlGrid
from wall_oss_ros.tools.openloop_metrics import ground_truth

C = contract("aloha_bimanual")
FPS = 50
MAX_AGE_S = 0.25


@dataclass
class MemoryStream:
    """Observations at obs_times; target rows at truth_times, handed over as the stream reaches them."""

    obs_times: list[float]
    truth_times_all: np.ndarray
    truth_rows: np.ndarray
    instructions: list[tuple[int, str]]
    contract: object = C
    bag: str = "memory"
    truth_source: str = "commands"
    truth_times: list[float] = field(default_factory=list)
    truth_values: list[np.ndarray] = field(default_factory=list)

    def __iter__(self):
        given_until = 0
        for t in self.obs_times:
            while given_until < len(self.truth_times_all) and self.truth_times_all[given_until] <= t + 0.05:
                self.truth_times.append(float(self.truth_times_all[given_until]))
                self.truth_values.append(self.truth_rows[given_until])
                given_until += 1
            yield Snapshot(t, {}, (), np.zeros(0))
        self.truth_times.extend(float(t) for t in self.truth_times_all[given_until:])
        self.truth_values.extend(self.truth_rows[given_until:])


@st.composite
def recordings(draw):
    steps = draw(st.lists(st.one_of(st.floats(0.005, 0.06), st.floats(0.2, 0.6)), min_size=2, max_size=60))
    obs = list(100.0 + np.cumsum(steps))
    truth_start = draw(st.floats(99.5, obs[len(obs) // 2]))
    truth_end = draw(st.floats(obs[len(obs) // 2], obs[-1] + 0.5))
    n = max(2, int((truth_end - truth_start) / 0.01))
    times = np.linspace(truth_start, truth_end, n)
    slope = draw(st.floats(-2.0, 2.0))
    rows = np.outer(times - 100.0, np.full(len(C.action_names), slope)) + np.arange(len(C.action_names))
    texts = draw(st.lists(st.tuples(st.integers(0, len(obs)), st.sampled_from(["", "pick", "place"])),
                          max_size=4))
    instructions = [(0, "pick"), *sorted(texts, key=lambda e: e[0])]
    return obs, times, rows, instructions


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recording=recordings(), split=st.sampled_from(["bag", "instruction"]))
def test_frames_hold_the_newest_observation_and_the_interpolated_target(recording, split):
    obs, times, rows, instructions = recording
    grid = ControlGrid(MemoryStream(obs, times, rows, instructions), FPS, split, "", MAX_AGE_S)
    frames = list(grid)
    dt, slack = 1.0 / FPS, STAMP_SLACK / FPS
    obs_arr = np.array(obs)
    for f in frames:
        newest = obs_arr[obs_arr <= f.t + slack].max()
        assert f.snapshot.t_obs == newest  # the newest formed by then: never a later one
        assert f.t - f.snapshot.t_obs <= MAX_AGE_S + 1e-9
        assert times[0] <= f.t <= times[-1]
        np.testing.assert_allclose(f.action, ground_truth(times, rows, np.array([f.t]))[0], atol=1e-9)
        assert f.task
    by_episode: dict[int, list] = {}
    for f in frames:
        by_episode.setdefault(f.episode, []).append(f)
    assert [f.episode for f in frames] == sorted(f.episode for f in frames)  # episodes in order
    for episode in by_episode.values():
        t = np.array([f.t for f in episode])
        np.testing.assert_allclose(np.diff(t), dt, atol=1e-9)  # one grid per episode, no step skipped
        assert len({f.task for f in episode}) == 1 or split == "bag"
    counts = grid.counts
    assert counts.frames == len(frames)
    assert counts.episodes >= len(by_episode)


def test_a_dimension_without_any_target_is_an_error():
    obs = list(100.0 + 0.02 * np.arange(400))
    times = np.linspace(100.0, 108.0, 800)
    rows = np.tile(np.arange(len(C.action_names), dtype=float), (800, 1))
    rows[:, 3] = np.nan  # one joint never commanded
    grid = ControlGrid(MemoryStream(obs, times, rows, [(0, "pick")]), FPS, "bag", "", MAX_AGE_S)
    with pytest.raises(ValueError, match="give no target for"):
        list(grid)
