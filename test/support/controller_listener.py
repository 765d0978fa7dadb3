"""Stands in for the robot's controllers only: subscribes to a contract's command topics, nothing else."""

from __future__ import annotations

import argparse
import json

import rclpy
from trajectory_msgs.msg import JointTrajectory

from test.support.robots import contract
from wall_oss_ros.ros.shutdown import until_shutdown


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contract", default="aloha_bimanual")
    args = parser.parse_args()
    rclpy.init()
    node = rclpy.create_node("controller_listener")
    for g in contract(args.contract).groups:
        node.create_subscription(JointTrajectory, g.output.topic, lambda m: None, 10)
    print(json.dumps({"ready": True}), flush=True)
    with until_shutdown():
        rclpy.spin(node)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
