"""`wall-oss-ros demo` end to end, shortened to 2 s of sim time: the whole graph closed loop on MuJoCo."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.rosbag2 import Reader

from test.support.robots import contract
from test.support.ros_process import REPO_ROOT, RosProcess, node_process
from test.support.spin import spin_until
from wall_oss_ros.msg import ActionChunk
from wall_oss_ros.ros.dds import ros_environment
from wall_oss_ros.tools.run_data import read_run

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_short_closed_loop_demo_moves_the_sim_within_limits(domain_id, tmp_path, ros_node):
    out = tmp_path / "demo"
    env = {**os.environ, **ros_environment(domain_id=domain_id)}
    done = subprocess.run([sys.executable, "-m", "wall_oss_ros.tools.cli", "demo", "--out", str(out),
                           "--duration-s", "2"], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)
    log = (out / "graph.log").read_text() if (out / "graph.log").exists() else ""
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}\n{log[-3000:]}"
    assert str(out / "report.md") in done.stdout

    summary = json.loads((out / "summary.json").read_text())
    assert summary["limit_violations_total"] == 0, summary["limit_violations"]
    assert summary["sim_time_s"] >= 1.9 and summary["commands"] > 50 and summary["chunks"] >= 1
    c = contract("aloha_bimanual")
    run = read_run(out / "run", c)
    q = np.array(run.joint_q)
    assert np.all(np.isfinite(q)) and all(np.all(np.isfinite(c.positions)) and np.all(np.isfinite(c.velocities))
                                          for cmds in run.commands.values() for c in cmds)
    # Commands reached the sim: the measured joints moved once chunks were executed.
    assert np.ptp(q, axis=0).max() > 0.01, "the simulated robot never moved"
    report = (out / "report.md").read_text()
    for name in ("joints.png", "latency.png", "status.png"):
        assert f"]({name})" in report and (out / name).stat().st_size > 10_000
    # An ordinary rosbag2 directory that says which robot it is of, with the camera the policy reads.
    meta = yaml.safe_load((out / "run" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["relative_file_paths"] == ["run_0.mcap"] and (out / "run" / "run_0.mcap").is_file()
    assert "joint_state_topics" in meta["custom_data"]["wall_oss_ros/contract"]
    topics = {t["topic_metadata"]["name"] for t in meta["topics_with_message_count"] if t["message_count"] > 0}
    assert {c.cameras[0].topic, "/joint_states"} <= topics
    # Provenance, read back from rosbag2's metadata as any rosbag2 tool reads it: the checkpoint by the hash of
    # its weights, the task, the nodes' parameters, and the capture audit the report shows.
    provenance = json.loads(meta["custom_data"]["wall_oss_ros/provenance"])
    weights = {w["file"]: w["sha256"] for w in provenance["checkpoint"]["weights"]}
    assert weights["model.safetensors"] == hashlib.sha256((out / "tiny_checkpoint" / "model.safetensors")
                                                          .read_bytes()).hexdigest()
    assert provenance["instructions"][0] == {"source": "policy_node instruction parameter", "t_s": None,
                                             "text": "insert the peg into the socket"}
    assert provenance["parameters"]["executor_node"]["contract"] == "aloha_bimanual"
    assert provenance["parameters"]["policy_node"]["checkpoint"] == str(out / "tiny_checkpoint")
    audit = {r["topic"]: r for r in json.loads(meta["custom_data"]["wall_oss_ros/capture_audit"])}
    assert audit["/joint_states"]["messages"] > 50 and audit["/joint_states"]["rate_hz"] > 0
    assert f"| `{c.cameras[0].topic}` |" in report
    with Reader(out / "run") as reader:  # rosbags opens the bag with the extra metadata
        assert reader.message_count > 0

    # The demo's bag feeds the replay graph: the policy computes fresh chunks from the recorded frames, and none
    # of the recorded chunks is replayed.
    chunks: list[ActionChunk] = []
    ros_node.create_subscription(ActionChunk, "/policy_node/action_chunk", chunks.append,
                                 QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    policy = node_process("policy_node", domain_id, checkpoint=out / "tiny_checkpoint", device="cpu",
                          instruction="insert the peg", use_sim_time=True)
    replay = None
    try:
        assert spin_until(ros_node, lambda: ros_node.count_subscribers(c.cameras[0].topic) > 0, 120), \
            f"the policy never subscribed to the camera: {policy.stderr()[-2000:]}"
        replay = RosProcess("../../wall_oss_ros/ros/bag_replay.py", "--ros-args", "-p", f"bag:={out / 'run'}",
                            domain_id=domain_id)
        spin_until(ros_node, lambda: replay.popen.poll() is not None, 120)
        code, replay_log = replay.popen.poll(), replay.stderr()
    finally:
        for process in (replay, policy):
            if process is not None:
                process.stop()
    assert code == 0, replay_log[-2000:]
    assert "/policy_node/action_chunk" in replay_log.split("not replayed")[1]  # named as left in the bag
    assert chunks, f"no chunk from the replayed frames; policy: {policy.stderr()[-2000:]}"


def test_the_demo_runs_a_wall_oss_05_checkpoint_within_limits(domain_id, tmp_path):
    """`make demo MODEL=wall-oss-0.5`: the same closed loop with a generated tiny WALL-OSS-0.5 checkpoint."""
    out = tmp_path / "demo_05"
    env = {**os.environ, **ros_environment(domain_id=domain_id)}
    done = subprocess.run([sys.executable, "-m", "wall_oss_ros.tools.cli", "demo", "--out", str(out),
                           "--duration-s", "2", "--model", "wall-oss-0.5"], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    log = (out / "graph.log").read_text() if (out / "graph.log").exists() else ""
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}\n{log[-3000:]}"
    assert "a wall-oss-0.5 checkpoint (" in log  # the policy node says which family it loaded
    summary = json.loads((out / "summary.json").read_text())
    assert summary["limit_violations_total"] == 0, summary["limit_violations"]
    assert summary["chunks"] >= 1 and summary["commands"] > 50
    assert "random-weight** wall-oss-0.5 model" in (out / "report.md").read_text()


def test_the_tiago_demo_runs_the_mobile_manipulator_closed_loop_within_limits(domain_id, tmp_path):
    """`make demo ROBOT=tiago`: TIAGo++ in MuJoCo, its 26-D contract (arms through IK, base, torso, head),
    closed loop: no command outside the joint limits, the arms never closer than the self-collision stop
    distance as commanded nor in contact as measured, the arms and the base moved."""
    out = tmp_path / "demo_tiago"
    env = {**os.environ, **ros_environment(domain_id=domain_id)}
    done = subprocess.run([sys.executable, "-m", "wall_oss_ros.tools.cli", "demo", "--robot", "tiago", "--out",
                           str(out), "--duration-s", "3"], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=400)
    log = (out / "graph.log").read_text() if (out / "graph.log").exists() else ""
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}\n{log[-3000:]}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["limit_violations_total"] == 0, summary["limit_violations"]
    assert summary["chunks"] >= 1 and summary["commands"] > 100
    c = contract("tiago_dual")
    run = read_run(out / "run", c)
    from wall_oss_ros.core.executor import Executor

    guard = Executor(c)._guard
    stop = c.self_collision.stop_distance_m
    names = list(run.joint_names)
    q = np.array(run.joint_q)
    arms = [g for g in c.groups if g.ik is not None]
    assert all(np.ptp(q[:, [names.index(j) for j in g.joints]], axis=0).max() > 0.005 for g in arms), \
        "an arm never moved"
    positions = np.zeros(len(guard.mask))
    ex_axes = {g.name: ga.axes for g, ga in zip(c.groups, Executor(c).groups, strict=True)}
    for row in q[::5]:  # at the robot: the measured configuration never in contact
        for g in c.groups:
            if g.joints:
                positions[ex_axes[g.name]] = row[[names.index(j) for j in g.joints]]
        assert guard.clearance(positions).distance_m > 0.0
    by_tick = {g.name: {cmd.stamp: cmd.positions for cmd in run.commands[g.name]} for g in c.groups if g.joints}
    ticks = sorted(set.intersection(*(set(v) for v in by_tick.values())))
    assert len(ticks) > 100
    closest = np.inf
    for stamp in ticks[::3]:  # as commanded, tick by tick: never under the stop distance
        for name, commands in by_tick.items():
            positions[ex_axes[name]] = commands[stamp]
        closest = min(closest, guard.clearance(positions).distance_m)
    assert closest >= stop - 1e-6, f"commanded {closest * 1e3:.1f} mm apart (stop distance {stop * 1e3:.0f} mm)"
    assert run.base_odometry and np.ptp(np.array(run.base_odometry)[:, 1:], axis=0).max() > 1e-3, \
        "the base never moved"
    report = (out / "report.md").read_text()
    for name in ("ee_paths.png", "base.png"):
        assert f"]({name})" in report and (out / name).stat().st_size > 10_000
