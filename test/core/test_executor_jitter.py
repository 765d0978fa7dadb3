"""Jittery chunks are followed calmly: the executor never turns policy noise into swings larger than the noise.

A jerk-limited follower fed the instantaneous derivatives of a spline through noisy 50 Hz knots answers
like a relay and swings at its velocity limit (5 mrad of noise became ±0.37 rad). These pin the fix: the
smoothed feed-forward and a servo gain that stays stable while the target uses most of the acceleration.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from test.support.executor_run import Recording, check_limits, measured_from_commands
from test.support.robots import contract, rest_action, rest_state
from wall_oss_ros.core.chunk import Chunk
from wall_oss_ros.core.executor import Executor
from wall_oss_ros.core.safety.status import ExecutorState

C = contract("aloha_bimanual")
ARMS = [i for g in C.groups if g.name.endswith("_arm") for i in range(C.action_slice(g).start,
                                                                      C.action_slice(g).stop)]
GRIPPERS = [i for g in C.groups if g.name.endswith("_gripper") for i in range(C.action_slice(g).start,
                                                                              C.action_slice(g).stop)]


def run(noise_rad: float, seed: int, duration_s: float, waist: tuple[float, float] = (0.0, 0.0)
        ) -> tuple[np.ndarray, np.ndarray, Executor, Recording]:
    """A chunk every 60 ms (observations 50 ms old) of rest + noise (+ a waist sine of (frequency, amplitude));
    returns the commanded arm positions, the sine's value at each tick, the executor and its recording."""
    ex, rng, rest = Executor(C), np.random.default_rng(seed), rest_action(C)
    base = m = rest_state(C)
    ex.tick(0.0, base)
    ex.start(0.0)
    freq, amp = waist
    rec, commands, reference = Recording(), [], []
    for k in range(1, int(duration_s * 100)):
        now = k * 0.01
        if k % 6 == 0:
            t = now - 0.05 + C.dt_s * np.arange(32)
            values = rest + rng.normal(0.0, noise_rad, (32, len(rest)))
            values[:, 0] += amp * np.sin(2 * np.pi * freq * t)
            values[:, GRIPPERS] = np.clip(values[:, GRIPPERS], 0.0, 1.0)
            assert ex.on_chunk(Chunk(k, now - 0.05, C.dt_s, C.action_names, values), now).accepted
        rec.add(ex.tick(now, m))
        m = measured_from_commands(ex, now, m)
        commands.append(ex.command_positions[ARMS])
        reference.append(rest[ARMS] + np.eye(len(ARMS))[0] * amp * np.sin(2 * np.pi * freq * now))
    return np.array(commands), np.array(reference), ex, rec


@settings(max_examples=6, deadline=None)
@given(noise_rad=st.floats(0.002, 0.04), seed=st.integers(0, 2**16))
def test_noise_is_not_amplified(noise_rad, seed):
    commands, reference, ex, rec = run(noise_rad, seed, 8.0)
    deviation = np.abs(commands - reference)[100:].max()
    assert ex.state is ExecutorState.RUNNING
    assert deviation <= 4 * noise_rad + 1e-3, f"{noise_rad:.4f} rad of chunk noise moved an arm by {deviation:.3f}"
    check_limits(ex, rec)


def test_demanding_motion_joined_late_is_caught():
    """A waist sine using 79 % of the acceleration limit, first seen mid-swing: the follower catches it."""
    commands, reference, ex, rec = run(0.0, 0, 8.0, waist=(1.0, 0.3))
    error = np.abs(commands[:, 0] - reference[:, 0])
    assert error[300:].max() < 0.03, f"still {error[300:].max():.3f} rad off the sine after 3 s"
    check_limits(ex, rec)
