"""bag_replay: publish a recorded robot's topics at their recorded timing and drive /clock from the bag's time.

With every other node on `use_sim_time`, policy_node and executor_node run unchanged on recorded data
(the executor with `dry_run`: previews and status only). What is replayed is the robot's side only, by
construction: the contract's cameras, joint states and end-effector poses (and the recorded /instruction),
never what the live graph publishes itself — a bag of a whole run also holds its chunks, status,
diagnostics and commands, and replaying those would show another run's actions as this checkpoint's. A
second publisher on a replayed topic (a robot still running) ends the replay with an error.

Messages go out as the recorded bytes (no deserialisation) with the QoS their publishers offered when
recorded. /clock carries the bag's own time (the receive time rosbag2 stored), so the header stamps inside
the messages and the clock agree; between messages it advances smoothly at `clock_hz`. A loop restarts
the clock, which the executor handles as a clock jump back (plan dropped, watchdogs re-armed).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np
import rclpy
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import ReliabilityPolicy
from rosbags.highlevel import AnyReader, AnyReaderError
from rosgraph_msgs.msg import Clock

from wall_oss_ros.core.contract import ContractError
from wall_oss_ros.core.contract.topics import robot_topics
from wall_oss_ros.ros.bag_io import message_class, ros_qos
from wall_oss_ros.ros.bag_types import typestore_with_own_messages
from wall_oss_ros.ros.conversions import sec_to_stamp
from wall_oss_ros.ros.parameters import Param, declare
from wall_oss_ros.ros.shutdown import ignore_further_signals, until_shutdown

SMALL_MESSAGE_DEPTH = 2000  # reliable history of non-image topics: 10 s of joint states at 2x replay speed
ALONE_CHECK_PERIOD_S = 1.0  # how often a replay looks for another publisher on its topics [s, wall]

PARAMS = (
    Param("bag", "", "rosbag2 directory or .mcap/.db3 file to replay"),
    Param("rate", 1.0, "replay speed: bag seconds per wall second"),
    Param("start_offset_s", 0.0, "skip this much of the bag's beginning [s]"),
    Param("loop", False, "start over at the end (the clock jumps back)"),
    Param("contract", "aloha_bimanual", "robot contract whose robot-side topics are replayed (name or YAML path)"),
    Param("replay_instruction", True, "also replay the recorded /instruction"),
    Param("topics_include", [""], "of those, replay only these topics (empty: all)"),
    Param("publish_clock", True, "publish /clock from the bag's time"),
    Param("clock_hz", 200.0, "/clock rate between messages [Hz of wall time]"),
    Param("wait_for_subscribers_s", 5.0, "before the first message, wait up to this long for every replayed topic "
                                         "to have a matched subscriber [s]; 0: start at once"),
    Param("delivery_timeout_s", 10.0, "at the bag's end, wait up to this long for every reliable subscriber to "
                                      "acknowledge the last messages before exiting [s]"),
)


@dataclass
class ReplayStats:
    published: int = 0
    lateness_s: list[float] = field(default_factory=list)  # wall time of publish minus its due time

    def summary(self) -> dict[str, float]:
        late = np.asarray(self.lateness_s) if self.lateness_s else np.zeros(1)
        return {"published": self.published, "lateness_p50_ms": float(np.percentile(late, 50) * 1e3),
                "lateness_p99_ms": float(np.percentile(late, 99) * 1e3), "lateness_max_ms": float(late.max() * 1e3)}


class BagReplayer:
    """Publishes on `node`; run() blocks until the bag (or every loop) has been replayed or stop() is called."""

    def __init__(self, node: Node, bag: Path, topics: tuple[str, ...], rate: float = 1.0, start_offset_s: float = 0.0,
                 loop: bool = False, include: tuple[str, ...] = (), publish_clock: bool = True,
                 clock_hz: float = 200.0, wait_for_subscribers_s: float = 5.0,
                 delivery_timeout_s: float = 10.0) -> None:
        """topics: what may be replayed (the robot's side); everything else in the bag stays in it."""
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.node, self.path = node, Path(bag)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such bag")
        self.rate, self.offset_ns, self.loop = rate, int(start_offset_s * 1e9), loop
        self.clock_period = 1.0 / clock_hz
        self.wait_for_subscribers_s = wait_for_subscribers_s
        self.delivery_timeout_s = delivery_timeout_s
        self.reader = AnyReader([self.path], default_typestore=typestore_with_own_messages())
        try:
            self.reader.open()
        except AnyReaderError as exc:  # truncated, corrupt, not a bag: one line naming the bag
            raise ValueError(f"{self.path}: not a readable rosbag2 ({exc})") from exc
        wanted = [t for t in topics if not include or t in include]
        self.connections = [c for c in self.reader.connections if c.topic in wanted]
        self.left_in_bag = sorted(set(self.reader.topics) - set(wanted) - {"/clock"})
        self.missing = sorted(set(wanted) - set(self.reader.topics))
        if not self.connections:
            raise ValueError(f"{self.path}: none of the robot's topics {wanted} is in the bag "
                             f"(it holds {sorted(self.reader.topics)})")
        self.publishers = {}
        for c in self.connections:
            if c.topic not in self.publishers:
                offered = getattr(c.ext, "offered_qos_profiles", [])
                qos = ros_qos(offered)
                if qos.reliability == ReliabilityPolicy.RELIABLE and not c.msgtype.endswith("Image"):
                    qos.depth = SMALL_MESSAGE_DEPTH  # a reader starved for seconds still gets every joint state
                self.publishers[c.topic] = node.create_publisher(message_class(c.msgtype), c.topic, qos)
        self.clock_pub = node.create_publisher(Clock, "/clock", 10) if publish_clock else None
        self.stats = ReplayStats()
        self._stop = False
        self._next_check = 0.0

    def stop(self) -> None:
        self._stop = True

    def _clock(self, t_ns: int) -> None:
        if self.clock_pub is not None:
            self.clock_pub.publish(Clock(clock=sec_to_stamp(t_ns * 1e-9)))

    def _wait_until(self, wall: float, bag_start_ns: int, wall_start: float) -> None:
        """Sleep until `wall`, publishing the clock of the bag's time as it passes."""
        while not self._stop:
            now = time.monotonic()
            if now >= self._next_check:
                self._next_check = now + ALONE_CHECK_PERIOD_S
                self._check_alone()
            if now >= wall:
                return
            self._clock(bag_start_ns + int((now - wall_start) * self.rate * 1e9))
            time.sleep(min(self.clock_period, wall - now))

    def wait_for_subscribers(self) -> list[str]:
        """Wait until every replayed topic has a matched subscriber (or the wait is over); the topics without one.

        A message published before discovery has matched a reader is never delivered: without the wait, the
        first second of a bag silently goes missing from an open-loop check."""
        deadline = time.monotonic() + self.wait_for_subscribers_s
        while True:
            unmatched = sorted(t for t, pub in self.publishers.items() if pub.get_subscription_count() == 0)
            if not unmatched or time.monotonic() >= deadline or self._stop:
                return unmatched
            time.sleep(0.02)

    def wait_for_delivery(self) -> list[str]:
        """Wait until reliable subscribers have acknowledged everything published; the topics still owed.

        A publisher destroyed with messages in flight loses them: without the wait, a reader starved by a loaded
        machine misses the bag's last messages."""
        deadline = time.monotonic() + self.delivery_timeout_s
        owed = []
        for topic, pub in self.publishers.items():
            left_s = max(0.0, deadline - time.monotonic())
            if not pub.wait_for_all_acked(Duration(nanoseconds=int(left_s * 1e9))):
                owed.append(topic)
        return sorted(owed)

    def other_publishers(self) -> list[str]:
        """Replayed topics that another node publishes too: live data would mix with the recording."""
        return sorted(t for t in self.publishers if self.node.count_publishers(t) > 1)

    def _check_alone(self) -> None:
        others = self.other_publishers()
        if others:
            raise ValueError(f"another node publishes {others} (a running robot or driver?): the replay must be "
                             f"the only source of the robot's topics; stop it first")

    def run(self) -> ReplayStats:
        unmatched = self.wait_for_subscribers()
        self._check_alone()
        if unmatched and self.wait_for_subscribers_s > 0:
            self.node.get_logger().warning(f"no subscriber after {self.wait_for_subscribers_s} s on {unmatched}: "
                                           "their messages go nowhere")
        start_ns = self.reader.start_time + self.offset_ns
        while not self._stop:
            wall_start = time.monotonic()
            self._clock(start_ns)
            for conn, t_ns, raw in self._messages(start_ns):
                due = wall_start + (t_ns - start_ns) * 1e-9 / self.rate
                self._wait_until(due, start_ns, wall_start)
                if self._stop:
                    break
                self._clock(t_ns)
                self.publishers[conn.topic].publish(bytes(raw))
                self.stats.lateness_s.append(time.monotonic() - due)
                self.stats.published += 1
            if not self.loop:
                break
        if not self._stop:
            owed = self.wait_for_delivery()
            if owed:
                self.node.get_logger().warning(f"not acknowledged after {self.delivery_timeout_s} s on {owed}: "
                                               "a subscriber may have missed the bag's last messages")
        return self.stats

    def _messages(self, start_ns: int):  # noqa: ANN202 - an iterator of rosbags' (connection, t_ns, bytes)
        """The bag's messages; damage found while reading (a chunk cut short) ends the replay with its reason."""
        last_ns = start_ns
        try:
            for conn, t_ns, raw in self.reader.messages(connections=self.connections, start=start_ns):
                last_ns = t_ns
                yield conn, t_ns, raw
        except Exception as exc:  # rosbags raises its readers' own types; none of them may kill the process
            raise ValueError(f"{self.path}: unreadable after {(last_ns - self.reader.start_time) * 1e-9:.3f} s of "
                             f"the bag ({type(exc).__name__}: {exc})") from exc

    def close(self) -> None:
        self.reader.close()


def main(args: list[str] | None = None) -> NoReturn:
    rclpy.init(args=args if args is not None else sys.argv)
    node = None
    code = 0
    try:
        with until_shutdown():  # Ctrl-C at any point, start-up (reading the bag, discovery) included
            node = rclpy.create_node("bag_replay")
            p = declare(node, PARAMS)
            topics = tuple(robot_topics(str(p["contract"]))) + (("/instruction",) if p["replay_instruction"] else ())
            replayer = BagReplayer(node, Path(p["bag"]), topics, float(p["rate"]), float(p["start_offset_s"]),
                                   bool(p["loop"]), tuple(t for t in p["topics_include"] if t),
                                   bool(p["publish_clock"]), float(p["clock_hz"]), float(p["wait_for_subscribers_s"]),
                                   float(p["delivery_timeout_s"]))
            log = node.get_logger()
            log.info(f"replaying {replayer.path}: {sorted({c.topic for c in replayer.connections})} at {p['rate']}x")
            if replayer.left_in_bag:
                log.info(f"not replayed (the live graph's own, or not the robot's): {replayer.left_in_bag}")
            if replayer.missing:
                log.warning(f"the bag lacks the robot's {replayer.missing}: what needs them will wait")
            stats = replayer.run()
            replayer.close()
            print(json.dumps(stats.summary()), flush=True)
            node.get_logger().info(f"replay finished at the bag's end: {stats.summary()}; /clock stops here, and "
                                   "nodes on sim time stand still until they are shut down")
    except (ValueError, FileNotFoundError, OSError, ContractError) as exc:
        if node is not None:
            node.get_logger().error(f"cannot replay: {exc}")
        code = 2
    finally:
        ignore_further_signals()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    # No interpreter teardown after rclpy's: on a loaded machine it crashed once (SIGSEGV) after a clean end.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
