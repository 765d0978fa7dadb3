"""The same recorded observations give the same chunks replayed into the live graph and evaluated offline."""

from __future__ import annotations

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy

from test.support.bags import write_test_bag
from test.support.robots import contract
from test.support.ros_process import node_process
from test.support.spin import spin_until
from wall_oss_ros.msg import ActionChunk
from wall_oss_ros.ros.conversions import stamp_to_sec
from wall_oss_ros.ros.policy_node import OBSERVATION_STATUS
from wall_oss_ros.tools.eval_openloop import evaluate, read_recording

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_replayed_graph_and_offline_evaluation_agree(ros_node, domain_id, tmp_path, tiny_checkpoint):
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    c = contract("aloha_bimanual")
    bag = tmp_path / "bag"
    # At quarter speed an inference on a loaded 2-core machine spans well under the policy's observation age
    # of bag time, so most of the 30 frames become chunks (28 with one core taken by a busy loop).
    write_test_bag(bag, "mcap", duration_s=3.0, instruction="insert the peg")
    chunks: list[ActionChunk] = []
    ros_node.create_subscription(ActionChunk, "/policy_node/action_chunk", chunks.append,
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    waits: list[str] = []  # what the policy's observation stage reported, in order, repeats folded
    ros_node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: _note_waits(m, waits),
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    policy = node_process("policy_node", domain_id, checkpoint=tiny_checkpoint, device="cpu", seed=7,
                          instruction="insert the peg", use_sim_time=True, cpu_threads=1)
    executor = node_process("executor_node", domain_id, dry_run=True, autostart=True, use_sim_time=True)
    replay = None
    try:
        assert spin_until(ros_node, lambda: ros_node.count_publishers("/policy_node/action_chunk") > 0, 60), \
            policy.stderr()[-2000:]
        replay = node_process("bag_replay", domain_id, activate=False, bag=bag, rate=0.25)
        spin_until(ros_node, lambda: replay.popen.poll() is not None, 90)
        spin_until(ros_node, lambda: False, 2.0)  # the last inference
    finally:
        for p in (replay, policy, executor):
            if p is not None:
                p.stop()
    stamps = [round(stamp_to_sec(m.header.stamp), 3) for m in chunks]
    assert len(chunks) >= 10, (f"only {len(chunks)} chunks from the replayed graph, t_obs {stamps}; observation "
                              f"stage said {waits}; replay printed {replay.popen.stdout.read() if replay else None!r} "
                              f"{replay.stderr()[-1500:] if replay else ''}; policy:\n{policy.stderr()[-2000:]}")

    run = read_recording(bag, c)
    backend = WallOssBackend(tiny_checkpoint, c, device="cpu", seed=7)
    offline = {round(s.t_obs * 1e9): s for s in run.snapshots}
    for live in chunks:
        key = round(stamp_to_sec(live.header.stamp) * 1e9)
        assert key in offline, "the live graph used an observation the offline evaluation does not have"
        snap = offline[key]
        np.testing.assert_array_equal(np.asarray(live.state), snap.state)  # the same proprioception
        _, (result,) = evaluate(run.__class__(**{**run.__dict__, "snapshots": [snap]}), backend, c, progress=False)
        live_values = np.asarray(live.values).reshape(live.horizon, live.dim)
        np.testing.assert_allclose(live_values, result.actions, atol=1e-5)  # CPU thread counts differ


def _note_waits(msg: DiagnosticArray, waits: list[str]) -> None:
    for status in msg.status:
        if status.name == OBSERVATION_STATUS and (not waits or waits[-1] != status.message):
            waits.append(status.message)
