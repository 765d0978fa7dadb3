"""Bag workflows: open-loop evaluation throughput (tiny model) and replay timing accuracy.

Evaluation: a synthetic ALOHA recording (640×480 rgb8 frames at 10 Hz, joint states at 100 Hz, joint
commands) read, synchronised and run through the tiny random checkpoint on the CPU; observations per
second for reading alone and end to end. Replay: the bag_replay engine publishing a recording (frames
at 30 Hz, joint states at 100 Hz) over DDS; lateness = wall time of each publish minus its due time.

    python benchmarks/bench_bags.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import rclpy

from test.support.bags import write_test_bag
from test.support.robots import contract
from wall_oss_ros.core.contract.topics import robot_topics
from wall_oss_ros.ros.bag_replay import BagReplayer
from wall_oss_ros.ros.dds import ros_environment
from wall_oss_ros.tools.eval_openloop import evaluate, read_recording
from wall_oss_ros.tools.make_tiny_checkpoint import write


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the synthetic recordings [s]")
    args = parser.parse_args()
    os.environ.update(ros_environment(domain_id=62))
    tmp = Path(tempfile.mkdtemp(prefix="bench_bags_"))
    c = contract("aloha_bimanual")
    report: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"}

    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    bag = tmp / "eval"
    write_test_bag(bag, "mcap", duration_s=args.seconds, camera_hz=10.0, commands=True, size=(480, 640))
    t0 = time.perf_counter()
    run = read_recording(bag, c)
    read_s = time.perf_counter() - t0
    backend = WallOssBackend(write(tmp / "ckpt", "transformers", "aloha_bimanual", 0), c, device="cpu")
    t0 = time.perf_counter()
    evaluate(run, backend, c, progress=False)
    eval_s = time.perf_counter() - t0
    n = len(run.snapshots)
    report["eval"] = {"observations": n, "read_obs_per_s": n / read_s, "end_to_end_obs_per_s": n / (read_s + eval_s),
                      "model_share": eval_s / (read_s + eval_s)}

    rclpy.init()
    node = rclpy.create_node("bench_replay")
    replay_bag = tmp / "replay"
    write_test_bag(replay_bag, "mcap", duration_s=min(args.seconds, 10.0), camera_hz=30.0, size=(480, 640))
    report["replay"] = {}
    robot = (*robot_topics("aloha_bimanual"), "/instruction")
    for rate in (1.0, 2.0):
        replayer = BagReplayer(node, replay_bag, robot, rate=rate, wait_for_subscribers_s=0.0)  # timing alone
        stats = replayer.run()
        replayer.close()
        report["replay"][f"rate_{rate:g}"] = stats.summary()
    node.destroy_node()
    rclpy.try_shutdown()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
