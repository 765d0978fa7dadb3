"""rosbag2 files in both storage formats: record → read round trip, offline evaluation, bad bags."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosbags.highlevel import AnyReader
from sensor_msgs.msg import CompressedImage, Image, JointState

from test.support.bags import RECEIVE_DELAY_S, T0, WRITERS, bag_path, motion, write_test_bag
from test.support.robots import contract
from test.support.spin import spin_until
from wall_oss_ros.ros.bag_types import typestore_with_own_messages
from wall_oss_ros.ros.conversions import sec_to_stamp
from wall_oss_ros.tools.bag_record import BagRecorder
from wall_oss_ros.tools.eval_openloop import evaluate, read_recording

C = contract("aloha_bimanual")


@pytest.mark.ros
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_record_round_trip_keeps_every_message_and_its_qos(ros_node, tmp_path, storage):
    bag = tmp_path / f"rec_{storage}"
    topics = {"/cam/raw": "sensor_msgs/msg/Image", "/cam/raw/compressed": "sensor_msgs/msg/CompressedImage",
              "/joint_states": "sensor_msgs/msg/JointState"}
    recorder = BagRecorder(ros_node, bag, topics, storage, reliable=("/joint_states",))
    raw = ros_node.create_publisher(Image, "/cam/raw", qos_profile_sensor_data)
    jpeg = ros_node.create_publisher(CompressedImage, "/cam/raw/compressed", qos_profile_sensor_data)
    joints = ros_node.create_publisher(JointState, "/joint_states",
                                       QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    assert spin_until(ros_node, lambda: all(p.get_subscription_count() for p in (raw, jpeg, joints)), 10)
    sent = []
    for k in range(20):
        stamp = sec_to_stamp(T0 + 0.05 * k)
        image = Image(height=4, width=5, encoding="rgb8", step=15, data=bytes(range(k, k + 60)))
        image.header.stamp = stamp
        state = JointState(name=["a", "b"], position=[0.1 * k, -0.2 * k])
        state.header.stamp = stamp
        comp = CompressedImage(format="jpeg", data=bytes([k]) * 7)
        comp.header.stamp = stamp
        raw.publish(image)
        jpeg.publish(comp)
        joints.publish(state)
        sent.append((image, comp, state))
        spin_until(ros_node, lambda: False, 0.01)
    assert spin_until(ros_node, lambda: min(recorder.counts.values()) == 20, 10), recorder.counts
    recorder.close()
    # The layout `ros2 bag record` writes: the first file of the bag numbered, and metadata.yaml naming it.
    first = f"{bag.name}_0.{'mcap' if storage == 'mcap' else 'db3'}"
    assert sorted(p.name for p in bag.iterdir()) == sorted(["metadata.yaml", first])
    got: dict[str, list] = {t: [] for t in topics}
    with AnyReader([bag], default_typestore=typestore_with_own_messages()) as reader:
        qos = {c.topic: c.ext.offered_qos_profiles for c in reader.connections}
        for conn, _, data in reader.messages():
            got[conn.topic].append(reader.deserialize(data, conn.msgtype))
    for k, (image, comp, state) in enumerate(sent):
        assert bytes(got["/cam/raw"][k].data) == bytes(image.data) and got["/cam/raw"][k].encoding == "rgb8"
        assert got["/cam/raw"][k].header.stamp.sec == image.header.stamp.sec
        assert bytes(got["/cam/raw/compressed"][k].data) == bytes(comp.data)
        assert list(got["/joint_states"][k].position) == list(state.position)
    assert qos["/cam/raw"][0].reliability.name == "BEST_EFFORT"  # as the camera offered it
    assert qos["/joint_states"][0].reliability.name == "RELIABLE"


@pytest.mark.parametrize("storage", WRITERS)
@pytest.mark.parametrize("compressed", [False, True])
def test_generated_bags_give_one_observation_per_frame(tmp_path, storage, compressed):
    bag = bag_path(tmp_path, storage)
    info = write_test_bag(bag, storage, compressed=compressed)
    run = read_recording(bag, C)
    assert len(run.snapshots) == info["frames"] and run.truth_source == "joint_states"
    assert run.instruction == "insert the peg"
    for snap in run.snapshots:  # proprioception: the joint state stamped nearest the frame (1 ms before)
        np.testing.assert_allclose(snap.state, motion(snap.t_obs - 0.001 - T0, info["rest"]), atol=1e-12)


def test_evaluation_against_a_known_trajectory(tmp_path, tiny_checkpoint):
    from wall_oss_ros.policy.backend import Observation
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend
    from wall_oss_ros.ros.conversions import image_to_rgb
    from wall_oss_ros.tools.openloop_metrics import compute_metrics

    bag = tmp_path / "bag"
    info = write_test_bag(bag, commands=True)
    run = read_recording(bag, C, every=4)
    assert run.truth_source == "commands" and len(run.snapshots) == 5
    backend = WallOssBackend(tiny_checkpoint, C, device="cpu", seed=3)
    chunks, results = evaluate(run, backend, C, progress=False)
    for snap, chunk, result in zip(run.snapshots, chunks, results, strict=True):
        # The recorded command for time q is the motion at q - RECEIVE_DELAY_S (stamp 0 = receipt).
        query = chunk.t_obs + C.dt_s * np.arange(len(chunk.predicted))
        expected = motion(query - T0 - RECEIVE_DELAY_S, info["rest"])
        inside = np.isfinite(chunk.truth).all(axis=1)
        assert inside.sum() >= 10
        np.testing.assert_allclose(chunk.truth[inside], expected[inside], atol=2e-4)
        # Same observation, same seed: exactly what the backend gives when called directly.
        images = {n: image_to_rgb(f) for n, f in snap.frames.items()}
        again = backend.infer(Observation(images, snap.state, "insert the peg", round(snap.t_obs * 1e9)))
        np.testing.assert_array_equal(again.actions, result.actions)
    metrics = compute_metrics(chunks, C.action_names, C.dt_s)
    errors = np.concatenate([np.abs(c.predicted - c.truth)[np.isfinite(c.truth).all(axis=1)] for c in chunks])
    assert metrics["mae"][C.action_names[0]] == pytest.approx(errors[:, 0].mean())


def test_a_bag_missing_a_required_topic_is_named(tmp_path):
    bag = tmp_path / "bag"
    write_test_bag(bag, compressed=True)  # only the compressed twin: fine
    assert read_recording(bag, C).snapshots
    other = contract("mobile_manipulator")
    with pytest.raises(ValueError, match="needs topics"):
        read_recording(bag, other)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_truncated_or_corrupt_bags_give_a_clear_error(tmp_path, damage):
    bag = tmp_path / "bag"
    write_test_bag(bag, "mcap")
    (mcap,) = bag.glob("*.mcap")
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 1000)
    with pytest.raises(ValueError, match="bag"):
        read_recording(bag, C)


@pytest.mark.ros
def test_a_recording_keeps_its_instructions_the_nodes_parameters_and_its_audit(ros_node, domain_id, tmp_path):
    """/instruction texts in the order given, every parameter of the graph's nodes that run (asked over their
    parameter services), the audit of what arrived: in metadata.yaml's custom_data, as rosbag2 keeps it."""
    import json

    import yaml
    from std_msgs.msg import String

    from test.support.ros_process import node_process

    executor = node_process("executor_node", domain_id, control_hz=50.0)
    try:
        bag = tmp_path / "provenance"
        recorder = BagRecorder(ros_node, bag, {"/instruction": "std_msgs/msg/String"}, reliable=("/instruction",))
        pub = ros_node.create_publisher(String, "/instruction", QoSProfile(depth=10,
                                                                            reliability=ReliabilityPolicy.RELIABLE))
        assert spin_until(ros_node, lambda: pub.get_subscription_count() > 0, 10)
        assert spin_until(ros_node, lambda: "executor_node" in ros_node.get_node_names(), 60)
        for text in ("insert the peg", "lift the peg"):
            pub.publish(String(data=text))
            spin_until(ros_node, lambda: False, 0.2)
        assert spin_until(ros_node, lambda: recorder.counts["/instruction"] == 2, 10)
        audit = recorder.close_with_provenance(timeout_s=10.0)
    finally:
        executor.stop()
    custom = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]["custom_data"]
    record = json.loads(custom["wall_oss_ros/provenance"])
    assert [i["text"] for i in record["instructions"]] == ["insert the peg", "lift the peg"]
    assert record["parameters"]["executor_node"]["control_hz"] == 50.0
    assert "policy_node" not in record["parameters"]  # not running: nothing claimed for it
    assert "no checkpoint" in record["checkpoint"]["note"]
    assert json.loads(custom["wall_oss_ros/capture_audit"]) == audit and audit[0]["messages"] == 2
