"""Record ROS topics into a rosbag2 bag (mcap or sqlite3) from inside a Python process.

`ros2 bag record` (rosbag2_py) is not installable in a pip environment. This subscribes to each topic
with rclpy's raw (serialised CDR) interface and writes the bytes unchanged with `rosbags`, with the
message definitions (the package's own read from its msg/ files) and, per topic, the QoS its publishers
offered (so `ros2 bag play` re-offers the same, e.g. best-effort cameras, latched topics). A topic's
connection is created with its first message, when its publishers are known. Timestamps are the
recording node's clock at receipt (sim time under use_sim_time), as `ros2 bag record` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from std_msgs.msg import String

from wall_oss_ros.core.contract import CameraTransport, RobotContract
from wall_oss_ros.ros.bag_io import bag_qos, message_class
from wall_oss_ros.ros.bag_types import typestore_with_own_messages
from wall_oss_ros.ros.conversions import OUTPUT_TYPES

BEST_EFFORT_READER = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)  # matches any writer
RELIABLE_READER = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED_READER = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)
STORAGE = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
CONTRACT_KEY = "wall_oss_ros/contract"  # metadata.yaml custom_data: the robot contract's YAML, as recorded
INSTRUCTION_TOPIC = "/instruction"
GRAPH_NODES = ("policy_node", "executor_node", "sim_node", "bag_replay")  # whose parameters a bag keeps


def contract_topics(contract: RobotContract) -> dict[str, str]:
    """Everything the graph of a robot contract exchanges: sensors, chunks, status, commands, diagnostics."""
    topics = {t: "sensor_msgs/msg/JointState" for t in contract.joint_state_topics}
    for cam in contract.cameras:
        compressed = cam.transport is CameraTransport.COMPRESSED
        topics[cam.topic] = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    for g in contract.groups:
        if g.state_topic:  # a Cartesian EE group's measured pose (one through IK is measured by its joints)
            topics[g.state_topic] = "geometry_msgs/msg/PoseStamped"
        msg = OUTPUT_TYPES[g.output.kind]
        topics[g.output.topic] = f"{msg.__module__.split('.')[0]}/msg/{msg.__name__}"
    topics.update({"/policy_node/action_chunk": "wall_oss_ros/msg/ActionChunk",
                   "/policy_node/subtask": "std_msgs/msg/String",
                   "/executor_node/status": "wall_oss_ros/msg/ExecutorStatus",
                   "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray", "/instruction": "std_msgs/msg/String",
                   "/estop": "std_msgs/msg/Bool"})
    return topics


class BagRecorder:
    """Subscribes on `node` and writes every message of `topics` ({topic: type}) into the bag at `path` (a
    rosbag2 directory: path/metadata.yaml, path/<name>_0.mcap), with the robot contract in its metadata.

    reliable: topics read with a reliable reader (nothing lost to a busy recorder; such a reader does not
    match best-effort publishers, so sensor streams stay best-effort). latched: transient-local topics.
    """

    def __init__(self, node: Node, path: Path, topics: Mapping[str, str], storage: str = "mcap",
                 reliable: tuple[str, ...] = (), latched: tuple[str, ...] = (), contract_yaml: str = "") -> None:
        if storage not in STORAGE:
            raise ValueError(f"storage must be one of {sorted(STORAGE)}")
        self.node, self.path, self.types = node, Path(path), dict(topics)
        self.typestore = typestore_with_own_messages()
        self.writer = Writer(self.path, version=9, storage_plugin=STORAGE[storage])
        if contract_yaml:  # the bag says which robot it is of: a replay or evaluation needs no guess
            self.writer.set_custom_data(CONTRACT_KEY, contract_yaml)
        self.writer.open()
        self.counts = dict.fromkeys(topics, 0)
        self.receive_times: dict[str, list[float]] = {t: [] for t in topics}  # [s, the node's clock]
        self.instructions: list[tuple[float, str]] = []  # (receive time [s], text) on /instruction
        self._connections = {}
        for topic, type_name in topics.items():
            qos = LATCHED_READER if topic in latched else RELIABLE_READER if topic in reliable else BEST_EFFORT_READER
            node.create_subscription(message_class(type_name), topic, lambda data, t=topic: self._write(t, data),
                                     qos, raw=True)
        self._open = True

    def _connection(self, topic: str):  # noqa: ANN202 - rosbags Connection
        if topic not in self._connections:
            offered = [bag_qos(info.qos_profile) for info in self.node.get_publishers_info_by_topic(topic)]
            self._connections[topic] = self.writer.add_connection(topic, self.types[topic], typestore=self.typestore,
                                                                  offered_qos_profiles=offered[:1])
        return self._connections[topic]

    def _write(self, topic: str, data: bytes) -> None:
        if not self._open:
            return
        now_ns = self.node.get_clock().now().nanoseconds
        self.writer.write(self._connection(topic), now_ns, data)
        self.counts[topic] += 1
        self.receive_times[topic].append(now_ns * 1e-9)
        if topic == INSTRUCTION_TOPIC:
            self.instructions.append((now_ns * 1e-9, deserialize_message(data, String).data))

    def close(self, custom: Mapping[str, str] | None = None) -> None:
        """custom: more rosbag2 custom_data entries (string values) for metadata.yaml."""
        if self._open:
            self._open = False
            for key, value in (custom or {}).items():
                self.writer.set_custom_data(key, value)
            self.writer.close()
            number_the_file(self.path)

    def close_with_provenance(self, nodes: tuple[str, ...] = GRAPH_NODES, timeout_s: float = 2.0) -> list[dict]:
        """Close with the provenance (the policy's checkpoint, the instructions, the running nodes' parameters)
        and the capture audit in the metadata; returns the audit."""
        from wall_oss_ros.tools.provenance import capture_audit, custom_data, provenance

        parameters = node_parameters(self.node, nodes, timeout_s) if self._open else {}
        audit = capture_audit(self.receive_times)
        self.close(custom_data(provenance(self.instructions, parameters), audit))
        return audit


def node_parameters(node: Node, names: tuple[str, ...], timeout_s: float) -> dict[str, dict]:
    """Every parameter of each named node that answers within timeout_s (a node not running is left out)."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import parameter_value_to_python
    from rclpy.parameter_client import AsyncParameterClient

    executor = SingleThreadedExecutor(context=node.context)  # the node's own context, whichever it is
    executor.add_node(node)

    def answer(future):  # noqa: ANN001, ANN202 - rclpy Future
        executor.spin_until_future_complete(future, timeout_sec=timeout_s)
        return future.result() if future.done() else None

    out = {}
    try:
        running = set(node.get_node_names())
        for name in names:
            if name not in running:
                continue
            client = AsyncParameterClient(node, name)
            listed = answer(client.list_parameters()) if client.wait_for_services(timeout_sec=timeout_s) else None
            if listed is None:
                continue
            keys = sorted(listed.result.names)
            got = answer(client.get_parameters(keys))
            if got is not None:
                out[name] = {k: parameter_value_to_python(v) for k, v in zip(keys, got.values, strict=True)}
    finally:
        executor.remove_node(node)
        executor.shutdown()
    return out


def number_the_file(bag: Path) -> None:
    """Rename rosbags' single `<name>.<ext>` to `<name>_0.<ext>`, as `ros2 bag record` names the first file of a
    bag (tools that glob for the split files find it), and say so in metadata.yaml."""
    meta_path = bag / "metadata.yaml"
    meta = yaml.safe_load(meta_path.read_text())
    info = meta["rosbag2_bagfile_information"]
    renamed = {}
    for name in info["relative_file_paths"]:
        stem, dot, ext = name.partition(".")
        if stem == bag.name:
            renamed[name] = f"{stem}_0{dot}{ext}"
            (bag / name).rename(bag / renamed[name])
    info["relative_file_paths"] = [renamed.get(n, n) for n in info["relative_file_paths"]]
    for entry in info.get("files") or []:
        entry["path"] = renamed.get(entry["path"], entry["path"])
    meta_path.write_text(yaml.safe_dump(meta, sort_keys=False))
