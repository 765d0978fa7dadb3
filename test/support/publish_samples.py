"""Publish the sample ActionChunk / ExecutorStatus messages of given seeds (latched), then wait."""

from __future__ import annotations

import argparse
import json
import sys

import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from test.support.msg_samples import sample_action_chunk, sample_executor_status
from wall_oss_ros.msg import ActionChunk, ExecutorStatus
from wall_oss_ros.ros.shutdown import until_shutdown


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    args = parser.parse_args()
    rclpy.init()
    node = rclpy.create_node("sample_publisher")
    qos = QoSProfile(depth=len(args.seeds), reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
    chunks = node.create_publisher(ActionChunk, "samples/action_chunk", qos)
    statuses = node.create_publisher(ExecutorStatus, "samples/executor_status", qos)
    for seed in args.seeds:
        chunks.publish(sample_action_chunk(seed))
        statuses.publish(sample_executor_status(seed))
    print(json.dumps({"published": args.seeds}), flush=True)
    with until_shutdown():
        rclpy.spin(node)
    return 0


if __name__ == "__main__":
    sys.exit(main())
