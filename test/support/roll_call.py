"""Announce a name on /roll_call and report every name heard, to check that N processes discover each other."""

from __future__ import annotations

import argparse
import json
import sys
import time

import rclpy
from std_msgs.msg import String


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--timeout-s", type=float, default=20.0)
    args = parser.parse_args()
    rclpy.init()
    node = rclpy.create_node(f"roll_call_{args.name}")
    heard: set[str] = set()
    node.create_subscription(String, "roll_call", lambda m: heard.add(m.data), 50)
    pub = node.create_publisher(String, "roll_call", 50)
    deadline = time.monotonic() + args.timeout_s
    # Keep announcing until every peer was heard, then a little longer so the peers hear us too.
    linger_until = None
    while time.monotonic() < deadline:
        pub.publish(String(data=args.name))
        rclpy.spin_once(node, timeout_sec=0.05)
        if len(heard) >= args.expect and linger_until is None:
            linger_until = time.monotonic() + 2.0
        if linger_until is not None and time.monotonic() > linger_until:
            break
    print(json.dumps({"name": args.name, "heard": sorted(heard)}), flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
