"""The run report's motion checks on bags written by rosbags' writer and by mcap-ros2-support's: commands
recomputed on their tick grid, chunk-boundary jumps, measured motion."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rosbags.rosbag2 import Writer
from rosbags.typesys.base import Nodetype

from test.support.bags import write_with_mcap_ros2
from test.support.robots import contract, rest_action, rest_state
from wall_oss_ros.ros.bag_types import typestore_with_own_messages
from wall_oss_ros.tools.bag_record import STORAGE
from wall_oss_ros.tools.motion_checks import chunk_jumps, command_motion, derivatives, joint_motion
from wall_oss_ros.tools.run_data import read_run

C = contract("aloha_bimanual")
ARM = C.group("left_arm")
STORE = typestore_with_own_messages()
PERIOD_S = 0.01
T0 = 50.0
# A sine on the left waist at a known share of each limit: velocity A w, acceleration A w^2, jerk A w^3.
A, W = 0.2, 6.0  # [rad], [rad/s]: 1.2 rad/s (38 % of 3.14), 7.2 rad/s^2 (48 % of 15), 43.2 rad/s^3 (29 % of 150)


def waist(t: np.ndarray) -> np.ndarray:
    return A * np.sin(W * t)


def time_dict(t: float) -> dict:
    """builtin_interfaces/Time (or Duration) as a dict."""
    sec = math.floor(t)
    return {"sec": sec, "nanosec": round((t - sec) * 1e9)}


def command_dicts(mode: str, n: int, jump_at: int | None = None, jump_rad: float = 0.0) -> list[tuple[int, dict]]:
    """(receive time in ns, JointTrajectory as a dict) per tick of the left arm."""
    rest = np.array([rest_state(C).joints[a] for a in ARM.axes])
    out = []
    for k in range(n):
        t = T0 + k * PERIOD_S
        q = rest.copy()
        q[0] += waist(np.array(t - T0)) + (jump_rad if jump_at is not None and k >= jump_at else 0.0)
        horizon = mode == "horizon"
        points = [{"positions": list(q), "velocities": [], "accelerations": [], "effort": [],
                   "time_from_start": time_dict(i * PERIOD_S)}
                  for i in ((0, 1) if horizon else (1,))]
        stamp = t if horizon else 0.0
        header = {"stamp": time_dict(stamp), "frame_id": ""}
        jitter_ns = int(3e6 * np.sin(k))  # delivery jitter of up to 3 ms: not on the tick grid
        out.append((round(t * 1e9) + 4_000_000 + jitter_ns,
                    {"header": header, "joint_names": list(ARM.axes), "points": points}))
    return out


def chunk_dicts(offsets: list[float], arrival_delay_s: float = 0.05, spacing_s: float = 0.2) -> list[tuple[int, dict]]:
    """Chunks of 32 steps every spacing_s, each the same ramp shifted by its offset on the left waist."""
    rest = rest_action(C)
    out = []
    for k, offset in enumerate(offsets):
        t_obs = T0 + k * spacing_s
        steps = t_obs + 0.02 * np.arange(32)
        values = np.tile(rest, (32, 1))
        values[:, 0] += 0.5 * (steps - T0) + offset
        stamp = time_dict(t_obs)
        out.append((round((t_obs + arrival_delay_s) * 1e9), {
            "header": {"stamp": stamp, "frame_id": ""}, "chunk_id": k, "action_names": list(C.action_names),
            "dt_s": 0.02, "horizon": 32, "dim": 14, "values": list(values.reshape(-1)), "state_names": [],
            "state": [], "inference_start": stamp, "inference_end": stamp, "denoising_steps": 10,
            "rtc_prefix_steps": 0, "rtc_source_chunk_id": 0, "subtask": ""}))
    return out


def _to_message(typename: str, value: object):  # a rosbags message instance
    """A dict as the typestore's message class, nested messages and numeric arrays converted along its
    definition (rosbags' field definitions: NAME = another message, SEQUENCE of BASE or NAME)."""
    kwargs = {}
    for name, (kind, detail) in STORE.fielddefs[typename][1]:
        v = value[name]
        if kind == Nodetype.NAME:
            v = _to_message(detail, v)
        elif kind == Nodetype.SEQUENCE and detail[0][0] == Nodetype.NAME:
            v = [_to_message(detail[0][1], x) for x in v]
        elif kind == Nodetype.SEQUENCE and detail[0][1][0].startswith("float"):
            v = np.asarray(v, dtype=float)
        kwargs[name] = v
    return STORE.types[typename](**kwargs)


TYPES = {"/left_arm_controller/joint_trajectory": "trajectory_msgs/msg/JointTrajectory",
         "/policy_node/action_chunk": "wall_oss_ros/msg/ActionChunk"}


def write_bag(path: Path, writer: str, messages: dict[str, list[tuple[int, dict]]]) -> Path:
    """The messages as a rosbag2 directory (rosbags) or a bare .mcap file (mcap-ros2-support's encoder)."""
    if writer == "rosbags":
        with Writer(path, version=9, storage_plugin=STORAGE["mcap"]) as w:
            for topic, items in messages.items():
                conn = w.add_connection(topic, TYPES[topic], typestore=STORE)
                for t_ns, value in items:
                    w.write(conn, t_ns, STORE.serialize_cdr(_to_message(TYPES[topic], value), TYPES[topic]))
        return path
    file = path.with_suffix(".mcap")
    write_with_mcap_ros2(file, {t: TYPES[t] for t in messages},
                         [(t_ns * 1e-9, topic, value) for topic, items in messages.items() for t_ns, value in items])
    return file


@pytest.mark.parametrize("writer", ["rosbags", "mcap_ros2"])
@pytest.mark.parametrize("mode", ["horizon", "stream"])
def test_commands_are_measured_on_their_tick_grid_not_their_delivery(tmp_path, writer, mode):
    bag = write_bag(tmp_path / "bag", writer, {"/left_arm_controller/joint_trajectory": command_dicts(mode, 400)})
    got = command_motion(read_run(bag, C), C)
    lim = ARM.limits[0]
    # 4 s of a sine: its peaks are sampled within a tick, so the shares approach the analytic ones from below.
    for kind, exact in (("velocity", A * W / lim.velocity_max), ("acceleration", A * W**2 / lim.acceleration_max),
                        ("jerk", A * W**3 / lim.jerk_max)):
        assert exact * 0.98 < got[f"max_command_{kind}_of_limit"] <= exact * 1.001, (kind, got)
        assert got[f"command_{kind}_samples_over_limit"] == 0
    assert got["max_command_jerk_at"].startswith("vx300s_left/waist")


@pytest.mark.parametrize("writer", ["rosbags", "mcap_ros2"])
def test_a_step_in_the_commands_is_found_where_it_happened(tmp_path, writer):
    bag = write_bag(tmp_path / "bag", writer,
                    {"/left_arm_controller/joint_trajectory": command_dicts("horizon", 300, jump_at=150,
                                                                          jump_rad=0.01)})
    got = command_motion(read_run(bag, C), C)
    # 0.01 rad in one tick: 1 rad/s extra (within 3.14), 100 rad/s^2 and 10^4 rad/s^3 (far over the limits).
    assert got["command_velocity_samples_over_limit"] == 0
    assert got["command_acceleration_samples_over_limit"] >= 1 and got["command_jerk_samples_over_limit"] >= 2
    assert got["max_command_acceleration_at"] in (f"vx300s_left/waist at {T0 + s * PERIOD_S:.2f} s" for s in
                                                  (148, 149, 150))


@pytest.mark.parametrize("writer", ["rosbags", "mcap_ros2"])
def test_chunk_boundary_jumps_are_the_disagreement_at_arrival(tmp_path, writer):
    offsets = [0.0, 0.03, -0.05, 0.0]
    bag = write_bag(tmp_path / "bag", writer, {"/policy_node/action_chunk": chunk_dicts(offsets)})
    got = chunk_jumps(read_run(bag, C), C)
    arm = got["left_arm"]
    assert arm["switches"] == 3 and arm["unit"] == "rad"
    assert arm["max"] == pytest.approx(0.08)  # -0.05 after +0.03, evaluated at the same time
    assert arm["at"] == f"vx300s_left/waist at {T0 + 2 * 0.2 + 0.05:.2f} s"
    assert arm["max_at_velocity_limit_s"] == pytest.approx(0.08 / 3.14)
    assert got["left_gripper"]["max"] == pytest.approx(0.0) and got["chunk_switches_after_the_previous_ended"] == 0


def test_a_chunk_after_the_previous_ended_is_counted_not_compared(tmp_path):
    # 32 steps of 20 ms cover 0.62 s: a chunk 1 s later finds the previous one over.
    bag = write_bag(tmp_path / "bag", "rosbags", {"/policy_node/action_chunk": chunk_dicts([0.0, 0.1], spacing_s=1.0)})
    got = chunk_jumps(read_run(bag, C), C)
    assert got["chunk_switches_after_the_previous_ended"] == 1 and "left_arm" not in got


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.002, 0.05), min_size=4, max_size=40), st.floats(0.1, 2.0), st.floats(0.0, 6.0))
def test_samples_of_a_path_never_exceed_its_derivatives_at_any_spacing(gaps, amplitude, phase):
    """k! times the k-th divided difference is the k-th derivative somewhere in between (irregular ticks)."""
    t = np.concatenate([[0.0], np.cumsum(gaps)])
    w = 5.0
    v, a, j = derivatives(t, (amplitude * np.sin(w * t + phase))[:, None])
    assert np.abs(v).max() <= amplitude * w * (1 + 1e-9)
    assert np.abs(a).max() <= amplitude * w**2 * (1 + 1e-6)
    assert np.abs(j).max() <= amplitude * w**3 * (1 + 1e-4)


def test_measured_motion_reports_the_worst_joint_and_counts_samples_over_the_limit():
    t = np.arange(0.0, 2.0, 0.01)
    names = tuple(C.group("left_arm").axes)
    q = np.zeros((len(t), len(names)))
    q[:, 2] = 1.2 * np.sin(3.0 * t)  # elbow: 3.6 rad/s peak, over 105 % of 3.14
    got = joint_motion(t, q, names, C)
    assert got["max_joint_velocity_of_limit"] == pytest.approx(3.6 / 3.14, rel=0.01)
    assert got["max_joint_velocity_at"].startswith("vx300s_left/elbow")
    expected = np.sum(np.abs(np.diff(q[:, 2]) / np.diff(t)) > 1.05 * 3.14)
    assert got["joint_velocity_samples_over_limit"] == expected > 0
