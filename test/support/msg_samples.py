"""Deterministic, field-rich sample messages and a field-by-field comparison."""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Time

from wall_oss_ros.msg import ActionChunk, ExecutorStatus


def _time(rng: np.random.Generator) -> Time:
    return Time(sec=int(rng.integers(0, 2**31 - 1)), nanosec=int(rng.integers(0, 10**9)))


def _names(rng: np.random.Generator, n: int) -> list[str]:
    groups = ["left_arm", "right_arm", "base", "lift", "head", "left_gripper"]
    return [f"{groups[int(rng.integers(len(groups)))]}/joint_{i}_ü" for i in range(n)]


def sample_action_chunk(seed: int) -> ActionChunk:
    rng = np.random.default_rng(seed)
    horizon, dim = int(rng.integers(1, 33)), int(rng.integers(1, 27))
    msg = ActionChunk()
    msg.header.stamp = _time(rng)
    msg.header.frame_id = f"base_link_{seed}"
    msg.chunk_id = int(rng.integers(0, 2**63))
    msg.action_names = _names(rng, dim)
    msg.dt_s = float(rng.uniform(0.001, 0.1))
    msg.horizon, msg.dim = horizon, dim
    values = rng.normal(0.0, 100.0, horizon * dim)
    if seed % 2:  # non-finite values must cross DDS unchanged so the executor can reject them
        values[0], values[-1] = math.nan, -math.inf
    msg.values = values.tolist()
    msg.state_names = _names(rng, dim)
    msg.state = rng.normal(0.0, 1.0, dim).tolist()
    msg.inference_start, msg.inference_end = _time(rng), _time(rng)
    msg.denoising_steps = int(rng.integers(0, 50))
    msg.rtc_prefix_steps = int(rng.integers(0, horizon + 1))
    msg.rtc_source_chunk_id = int(rng.integers(0, 2**63))
    msg.subtask = "" if seed % 2 else f"pick up the red cube #{seed} — then place it"
    return msg


def sample_executor_status(seed: int) -> ExecutorStatus:
    rng = np.random.default_rng(seed + 10_000)
    states = [ExecutorStatus.STATE_IDLE, ExecutorStatus.STATE_RUNNING, ExecutorStatus.STATE_ESTOP,
              ExecutorStatus.STATE_FAULT, ExecutorStatus.STATE_HALTING]
    msg = ExecutorStatus()
    msg.header.stamp = _time(rng)
    msg.header.frame_id = "base_link"
    msg.state = states[seed % len(states)]
    msg.status_code = ExecutorStatus.STATUS_HALT_TRACKING_ERROR if seed % 2 else ExecutorStatus.STATUS_LIMITED_DYNAMICS
    msg.status_text = f"status {seed}"
    msg.active_chunk_id = int(rng.integers(0, 2**63))
    msg.has_active_chunk = bool(seed % 3)
    msg.remaining_steps = int(rng.integers(0, 33))
    msg.chunk_requested = bool(seed % 2)
    steps, dim = int(rng.integers(0, 26)), int(rng.integers(1, 27))
    msg.committed_names = _names(rng, dim)
    msg.committed_dt_s = float(rng.uniform(0.001, 0.1))
    msg.committed_start = _time(rng)
    msg.committed_steps = steps
    msg.committed_values = rng.uniform(-3.2, 3.2, steps * dim).tolist()
    msg.intervention_kinds = [ExecutorStatus.INTERVENTION_POSITION_LIMIT, ExecutorStatus.INTERVENTION_ESTOP]
    msg.intervention_counts = [int(rng.integers(0, 2**63)), int(rng.integers(0, 2**63))]
    msg.last_fault = "" if seed % 2 else "chunk 7 rejected: stamped 2.0 s in the future"
    return msg


def assert_msgs_equal(expected: object, actual: object, path: str = "msg") -> None:
    """Compare every field recursively; floats exactly (DDS must not alter them), NaN equal to NaN."""
    assert type(expected) is type(actual), f"{path}: type {type(actual)} != {type(expected)}"
    if hasattr(expected, "get_fields_and_field_types"):
        for field in expected.get_fields_and_field_types():
            assert_msgs_equal(getattr(expected, field), getattr(actual, field), f"{path}.{field}")
        return
    if isinstance(expected, float):
        assert expected == actual or (math.isnan(expected) and math.isnan(actual)), f"{path}: {actual} != {expected}"
        return
    if isinstance(expected, (list, tuple)) or hasattr(expected, "tolist"):
        expected_list, actual_list = list(expected), list(actual)
        assert len(expected_list) == len(actual_list), f"{path}: length {len(actual_list)} != {len(expected_list)}"
        for i, (e, a) in enumerate(zip(expected_list, actual_list, strict=True)):
            assert_msgs_equal(e, a, f"{path}[{i}]")
        return
    assert expected == actual, f"{path}: {actual!r} != {expected!r}"
