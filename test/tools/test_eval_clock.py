"""eval-openloop never gives a wrong answer silently: one clock for every series, every drop counted and said.

Bags are written with rosbags' writer or mcap-ros2-support's (test/support/bags.py) with what other tools and
real robots produce:
a sensor clock off the recorder's, zero stamps, stamps out of order, NaN commands, a missing arm.
"""

from __future__ import annotations

import numpy as np
import pytest

from test.support.bags import RECEIVE_DELAY_S, T0, WRITERS, bag_path, motion, write_test_bag
from test.support.robots import contract
from wall_oss_ros.tools.eval_openloop import read_recording, run_eval

C = contract("aloha_bimanual")


@pytest.mark.parametrize("storage", WRITERS)
@pytest.mark.parametrize("offset_s", [-0.5, 1000.0])
def test_a_sensor_clock_off_the_recorder_is_refused_with_the_numbers(tmp_path, offset_s, storage):
    bag = bag_path(tmp_path, storage)
    write_test_bag(bag, storage, commands=True, sensor_clock_offset_s=offset_s)
    with pytest.raises(ValueError, match=r"header stamps .* s off the receive times.*--time-source receive"):
        read_recording(bag, C)


@pytest.mark.parametrize("storage", WRITERS)
def test_on_receive_times_the_same_bag_evaluates_on_one_clock(tmp_path, storage):
    """Commands (unstamped: received) and observations both on the recorder's clock: the ground truth at an
    observation is the motion as it was received, whatever the sensors' own clock said."""
    bag = bag_path(tmp_path, storage)
    info = write_test_bag(bag, storage, commands=True, sensor_clock_offset_s=-0.5)
    run = read_recording(bag, C, time_source="receive")
    assert run.audit.summary()["topics"]["/joint_states"]["receive_minus_header_s"] == pytest.approx(0.504)
    assert len(run.snapshots) == info["frames"]
    for snap in run.snapshots:  # t_obs: the frame's receive time; the state: the joint state received 1 ms before
        np.testing.assert_allclose(snap.state, motion(snap.t_obs - RECEIVE_DELAY_S - 0.001 - T0, info["rest"]),
                                   atol=1e-9)


def test_zero_stamps_are_refused_unless_receive_times_are_chosen(tmp_path):
    bag = tmp_path / "bag"
    info = write_test_bag(bag, zero_stamps=True)
    with pytest.raises(ValueError, match=r"/joint_states: 200 of 200 messages have a zero stamp"):
        read_recording(bag, C)
    assert len(read_recording(bag, C, time_source="receive").snapshots) == info["frames"]


def test_out_of_order_joint_states_are_dropped_counted_and_warned_about(tmp_path):
    bag = tmp_path / "bag"
    write_test_bag(bag, swap_joint_stamps_every=5)
    run = read_recording(bag, C)
    topic = run.audit.summary()["topics"]["/joint_states"]
    assert topic["messages"] == 200 and topic["out_of_order_dropped"] == 40
    assert any("/joint_states: 40 of 200 messages dropped (40 out of order" in w for w in run.audit.warnings())
    for snap in run.snapshots:  # never a state stamped out of order: the kept states are in time order
        assert np.isfinite(snap.state).all()


def test_nan_commands_are_dropped_counted_and_warned_about(tmp_path):
    bag = tmp_path / "bag"
    write_test_bag(bag, commands=True, nan_commands_every=5)
    run = read_recording(bag, C)
    topics = run.audit.summary()["topics"]
    for g in C.groups:
        assert topics[g.output.topic]["not_finite_dropped"] == 40, topics[g.output.topic]
    assert np.isfinite(run.truth_values[:, :7]).any(axis=1).sum() == 2 * 160  # left arm + gripper rows kept
    assert len(run.audit.warnings()) == len(C.groups)


def test_a_missing_arm_is_named_not_called_unsynchronised(tmp_path):
    bag = tmp_path / "bag"
    write_test_bag(bag, drop_joints=("vx300s_right/waist", "vx300s_right/elbow"))
    with pytest.raises(ValueError, match=r"no synchronised observation: .*vx300s_right/waist"):
        read_recording(bag, C)


def test_no_ground_truth_overlapping_the_predictions_is_an_error(tmp_path, tiny_checkpoint):
    """Sensors 1000 s off the recorder, and the tolerance opened wide: the unstamped commands (timed by receipt)
    lie nowhere near the observations. Before, this gave "MAE None" and exit 0."""
    bag = tmp_path / "bag"
    write_test_bag(bag, commands=True, sensor_clock_offset_s=1000.0)
    with pytest.raises(ValueError, match="no recorded commands overlap the predicted chunks"):
        run_eval(bag, tiny_checkpoint, "aloha_bimanual", tmp_path / "eval", device="cpu", max_observations=1,
                 denoising_steps=1, max_clock_offset_s=2000.0)


def test_an_image_the_policy_cannot_read_is_named_before_any_model_loads(tmp_path):
    bag = tmp_path / "bag"
    write_test_bag(bag, image_encoding="yuv422")
    with pytest.raises(ValueError, match=r"bag: /camera/top/image_raw, frame stamped [0-9.]+ s: .*yuv422"):
        read_recording(bag, C)
