"""The wall-x backend against a stand-in of the wall-x 1.1.0 server made only of that server's parts
(msgpack-numpy, OpenCV's JPEG decoding, its reply schema): what it is sent, what the model sees, the chunk
it gives back, and every way a reply can be wrong."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from test.support import serving_standin
from test.support.robots import contract
from test.support.serving_standin import HORIZON, STEP_M, TURN_RAD, StandinPolicy, StandinServer, zyx_matrix
from wall_oss_ros.core.contract import load_contract
from wall_oss_ros.core.resources import config_path
from wall_oss_ros.core.rotations import matrix_to_rot6d, rot6d_to_matrix
from wall_oss_ros.policy.backend import Observation, RtcRequest
from wall_oss_ros.policy.remote.openpi_backend import OpenpiBackend
from wall_oss_ros.policy.remote.openpi_codec import ProtocolError
from wall_oss_ros.policy.remote.wallx_backend import WallxBackend
from wall_oss_ros.policy.remote.wallx_messages import parse_response
from wall_oss_ros.policy.remote.wallx_schema import SchemaError, load_schema, parse_schema
from wall_oss_ros.policy.remote.websocket_client import RemotePolicyError

pytest.importorskip("msgpack_numpy", reason="msgpack-numpy (make setup installs it)")

COLOUR = (200, 60, 10)  # the front camera's R, G, B: a channel swap shows in the chunk
SCHEMA = yaml.safe_load(config_path("servers", "wallx_bimanual_ee.yaml").read_text())


@pytest.fixture(scope="module")
def ee():
    return contract("bimanual_ee")


def schema(ee, **changes):
    return parse_schema({**SCHEMA, **changes}, ee, "test")


def observation(seed: int = 0) -> Observation:
    """bimanual_ee: per arm xyz + 6-D rotation (turned well away from identity) and a gripper opening."""
    rng = np.random.default_rng(seed)
    state = []
    for x in (0.3, 0.35):
        rotation = Rotation.from_rotvec(rng.uniform(-1.2, 1.2, 3)).as_matrix()
        state += [x, rng.uniform(-0.3, 0.3), 0.4, *matrix_to_rot6d(rotation), rng.uniform(0.01, 0.07)]
    front = np.empty((96, 128, 3), dtype=np.uint8)
    front[:] = COLOUR
    images = {"face_view": front, "left_wrist_view": rng.integers(0, 255, (96, 128, 3), dtype=np.uint8),
              "right_wrist_view": rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)}
    return Observation(images, np.array(state), "pick up the cup", 1_700_000_000_000_000_000 + seed)


@contextlib.contextmanager
def served(policy: StandinPolicy, **kwargs):
    server = StandinServer(policy, **kwargs)
    server.start()
    try:
        yield f"ws://127.0.0.1:{server.port}"
    finally:
        server.stop()


def arm_pose(state: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
    return state[start:start + 3], rot6d_to_matrix(state[start + 3:start + 9])


# ---------------------------------------------------------------- the request
def test_the_server_receives_its_schema(ee):
    policy, obs = StandinPolicy(), observation()
    with served(policy) as uri:
        client = WallxBackend(uri, ee, schema(ee), timeout_s=30.0)
        client.infer(obs)
        client.close()
    seen = policy.seen[0]
    assert seen["instruction"] == "pick up the cup" and seen["infer_mode"] == "flow"
    assert set(seen["views"]) == {"camera_front", "camera_left", "camera_right"}
    assert all(v.shape == (96, 128, 3) for v in seen["views"].values())
    for key, start in (("follow1_pos", 0), ("follow2_pos", 10)):
        sent = np.asarray(seen["state"][key])
        xyz, rotation = arm_pose(obs.state, start)
        assert sent.shape == (7,)
        np.testing.assert_allclose(sent[:3], xyz)
        np.testing.assert_allclose(zyx_matrix(*sent[3:6]), rotation, atol=1e-12)  # roll, pitch, yaw; Rz·Ry·Rx
        assert sent[6] == obs.state[start + 9]


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("passing", ["base64", "numpy"])
def test_the_model_sees_rgb_on_either_server_path(ee, batched, passing):
    """The single-request path hands cv2.imdecode's array to the model unconverted, the batched one converts
    BGR to RGB: with the schema saying which, the model sees R, G, B in that order. Said wrongly, it sees
    them swapped, so the setting matters."""
    for told in (batched, not batched):
        policy = StandinPolicy(batched=batched, image_passing=passing)
        with served(policy) as uri:
            client = WallxBackend(uri, ee, schema(ee, server_batching=told, image_passing=passing), timeout_s=30.0)
            client.infer(observation())
            client.close()
        mean = policy.seen[0]["views"]["camera_front"].reshape(-1, 3).mean(axis=0)
        if told == batched or passing == "numpy":
            np.testing.assert_allclose(mean, COLOUR, atol=3.0)
        else:
            np.testing.assert_allclose(mean, COLOUR[::-1], atol=3.0)


# ---------------------------------------------------------------- the reply
def test_the_chunk_is_the_servers_rows_after_row_0_relative_to_the_state_sent(ee):
    obs = observation(1)
    with served(StandinPolicy()) as uri:
        client = WallxBackend(uri, ee, schema(ee), timeout_s=30.0)
        result = client.infer(obs)
        client.close()
    assert result.actions.shape == (HORIZON, 20) and client.horizon == HORIZON
    assert result.action_names == ee.action_names and result.dt_s == ee.dt_s
    np.testing.assert_array_equal(result.state, obs.state)
    assert client.round_trip_s > 0
    colour = np.array(COLOUR) / 255.0
    for pose, grip in ((slice(0, 9), 9), (slice(10, 19), 19)):
        _, rotation = arm_pose(obs.state, pose.start)
        for k in range(HORIZON):  # step k is the server's row k + 1
            step = k + 1
            np.testing.assert_allclose(result.actions[k, pose.start:pose.start + 3], step * STEP_M * colour,
                                       atol=step * STEP_M * 3 / 255)  # relative position; JPEG: colour ±3 levels
            delta = rot6d_to_matrix(result.actions[k, pose.start + 3:pose.stop])  # R = dR · R_obs (base frame)
            np.testing.assert_allclose(delta @ rotation, zyx_matrix(0, 0, step * TURN_RAD) @ rotation, atol=1e-9)
            np.testing.assert_allclose(result.actions[k, grip], obs.state[grip] + step * serving_standin.GRIP)


def test_an_absolute_contract_gets_absolute_poses(ee, tmp_path):
    path = tmp_path / "bimanual_ee_absolute.yaml"
    path.write_text(config_path("robots", "bimanual_ee.yaml").read_text().replace("representation: relative",
                                                                                   "representation: absolute"))
    absolute, obs = load_contract(path), observation(2)
    with served(StandinPolicy()) as uri:
        result = WallxBackend(uri, absolute, parse_schema(SCHEMA, absolute), timeout_s=30.0).infer(obs)
    xyz, rotation = arm_pose(obs.state, 0)
    np.testing.assert_allclose(result.actions[0, :3], xyz + STEP_M * np.array(COLOUR) / 255.0,
                               atol=STEP_M * 3 / 255)
    np.testing.assert_allclose(rot6d_to_matrix(result.actions[0, 3:9]), zyx_matrix(0, 0, TURN_RAD) @ rotation,
                               atol=1e-9)


def test_a_server_that_cuts_row_0_is_refused(ee):
    """A server started with robot_action_start_ratio > 0 drops the current state from the front of its rows:
    taken as they come, every step would be shifted by one."""
    with (served(StandinPolicy(trim_front=True)) as uri,
          pytest.raises(RemotePolicyError, match=r"row 0 .* is not the state sent")):
        WallxBackend(uri, ee, schema(ee), timeout_s=30.0).infer(observation())


def test_the_subtask_mode_sends_its_mode_and_brings_the_subtask(ee):
    policy = StandinPolicy()
    with served(policy) as uri:
        result = WallxBackend(uri, ee, schema(ee, infer_mode="flow_with_subtask"), timeout_s=30.0).infer(observation())
    assert policy.seen[0]["infer_mode"] == "flow_with_subtask" and result.subtask == serving_standin.SUBTASK


def test_the_raw_predict_action_reply_is_taken_in_the_contracts_action_slots(ee):
    with served(StandinPolicy(raw=True)) as uri:
        result = WallxBackend(uri, ee, schema(ee, response="predict_action"), timeout_s=30.0).infer(observation())
    slots = [s for g in ee.groups for s in g.action_slots]
    expected = np.arange(20, dtype=np.float32)[slots] * 0.01 * np.arange(1, HORIZON + 1, dtype=np.float32)[:, None]
    np.testing.assert_allclose(result.actions, expected, rtol=1e-6)
    # a serialising server, a schema saying raw: no chunk, and why
    with (served(StandinPolicy()) as uri,
          pytest.raises(RemotePolicyError, match="missing 'predict_action'")):
        WallxBackend(uri, ee, schema(ee, response="predict_action"), timeout_s=30.0).infer(observation())


# ---------------------------------------------------------------- failures
def test_a_server_error_gives_no_chunk_then_the_next_request_reconnects(ee):
    policy = StandinPolicy(fail=True)
    with served(policy) as uri:
        client = WallxBackend(uri, ee, schema(ee), timeout_s=30.0, backoff_s=0.01)
        with pytest.raises(RemotePolicyError, match=r"server error.*CUDA out of memory"):
            client.infer(observation())
        policy.fail = False
        time.sleep(0.05)
        assert client.infer(observation()).actions.shape == (HORIZON, 20)
    # the batched path's error reply
    with (served(StandinPolicy(fail=True), error_reply=True) as uri,
          pytest.raises(RemotePolicyError, match="reports an error: CUDA out of memory")):
        WallxBackend(uri, ee, schema(ee), timeout_s=30.0).infer(observation())


def test_a_server_of_the_other_protocol_is_refused_by_name(ee):
    with (served(StandinPolicy(), metadata={"server": "wall_oss_ros", "horizon": 50}) as uri,
          pytest.raises(RemotePolicyError, match=r"not a wall-x server.*needs backend openpi")):
        WallxBackend(uri, ee, schema(ee)).warmup()
    with (served(StandinPolicy()) as uri,
          pytest.raises(RemotePolicyError, match=r"is a wall-x server.*use backend wallx")):
        OpenpiBackend(uri, ee).warmup()


def test_a_server_killed_mid_request_fails_the_request_at_once(ee):
    """The server process dies while it computes: the request fails when the connection drops, well inside
    the reply timeout, so the executor's chunk timeout is what stops the robot, not a hung client."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, serving_standin.__file__, "--port", str(port), "--delay-s", "30"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "serving"
        client = WallxBackend(f"ws://127.0.0.1:{port}", ee, schema(ee), timeout_s=60.0, backoff_s=0.2)
        client.warmup()
        import threading

        threading.Timer(1.0, server.kill).start()
        start = time.monotonic()
        with pytest.raises(RemotePolicyError, match="connection closed"):
            client.infer(observation())
        assert time.monotonic() - start < 30.0  # the connection's end, not the 60 s timeout nor the 30 s model
        with pytest.raises(RemotePolicyError, match=r"cannot connect|next attempt"):
            client.infer(observation())
    finally:
        server.kill()
        server.wait(10)


def test_rtc_is_refused_since_the_server_has_none(ee):
    with pytest.raises(ValueError, match="no real-time chunking"):
        WallxBackend("ws://127.0.0.1:9", ee, schema(ee)).infer(observation(), RtcRequest(np.zeros((4, 20)), 1))


# ---------------------------------------------------------------- the schema file
@pytest.mark.parametrize(("change", "message"), [
    ({"protocol": "openpi"}, "protocol must be wallx"),
    ({"contract": "aloha_bimanual"}, "written for contract 'aloha_bimanual'"),
    ({"infer_mode": "ar"}, "infer_mode: 'ar' is not one of"),
    ({"views": {"camera_front": "top"}}, "has no camera 'top'"),
    ({"arms": {"follow1_pos": {"pose": "left_gripper", "gripper": "left_gripper"}}}, "is gripper, not ee_pose"),
    ({"arms": {"follow1_pos": {"pose": "left_ee", "gripper": "left_gripper"}}}, "have no place in the server's"),
    ({"arms": {"follow1_pos": {"pose": "left_ee", "gripper": "left_gripper", "gripper_scale": 0}}}, "positive"),
    ({"jpeg_quality": 0}, "jpeg_quality"),
    ({"server_batching": "yes"}, "server_batching must be true or false"),
    ({"camera": {}}, "unknown fields"),
])
def test_a_schema_that_does_not_fit_says_which_field(ee, change, message):
    with pytest.raises(SchemaError, match=message):
        schema(ee, **change)


def test_shipped_schemas_load_against_their_contracts():
    for path in sorted(config_path("servers").glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        loaded = load_schema(str(path), contract(raw["contract"]))
        assert loaded.arms and loaded.views
    with pytest.raises(SchemaError, match="cannot read"):
        load_schema("no_such_server", contract("bimanual_ee"))


# ---------------------------------------------------------------- any reply
_numbers = st.floats(allow_nan=True, allow_infinity=True, width=64)
_rows = st.lists(st.lists(_numbers, min_size=0, max_size=9), min_size=0, max_size=4)
_values = st.one_of(st.none(), st.text(max_size=8), _numbers, _rows,
                    st.builds(lambda r: np.asarray(r, dtype=np.float32),
                              st.lists(st.floats(width=32), max_size=6)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])
@given(reply=st.one_of(_values, st.dictionaries(st.sampled_from(["follow1_pos", "follow2_pos", "predict_action",
                                                                 "subtask", "error", "other"]), _values)),
       raw=st.booleans())
def test_no_reply_crashes_the_parser(ee, reply, raw):
    """Whatever a server sends back: a chunk of finite numbers in the contract's shape, or a ProtocolError."""
    try:
        result = parse_response(reply, observation(), ee, schema(ee, response="predict_action" if raw else
                                                                 "follow_pos"), 0.0, 0.0)
    except ProtocolError:
        return
    assert result.actions.shape[1] == ee.action_dim and np.all(np.isfinite(result.actions))


# ---------------------------------------------------------------- against the wall-x code's own numbers
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "wallx_geometry_reference.json"


def test_poses_convert_as_the_wall_x_code_converts_them(ee):
    """Numbers written by wall-x 1.1.0's own geometry functions (euler_to_matrix_zyx_*, so3_to_euler_zyx_*):
    the Euler angles we send denote the rotation our state holds as wall-x reads them, the angles wall-x
    derives from a 6-D rotation (non-orthonormal ones included) are the ones we send, and rows wall-x
    writes decode to wall-x's rotation."""
    import json

    from wall_oss_ros.policy.remote.wallx_messages import wire_pose

    reference = json.loads(REFERENCE.read_text())
    arm = schema(ee).arms[0]
    base = observation().state
    for case in reference["so3_to_euler_zyx"]:
        state = base.copy()
        state[3:9] = case["rot6d"]
        sent = wire_pose(ee, arm, state)[3:6]
        np.testing.assert_allclose(np.angle(np.exp(1j * (sent - case["euler_rpy"]))), 0.0, atol=1e-9)
    for case in reference["euler_to_matrix_zyx"]:
        state = base.copy()
        state[3:9] = case["rot6d"]  # wall-x's 6-D layout is ours: the first two rows
        np.testing.assert_allclose(rot6d_to_matrix(state[3:9]), case["matrix"], atol=1e-12)
        sent = wire_pose(ee, arm, state)
        np.testing.assert_allclose(zyx_matrix(*sent[3:6]), case["matrix"], atol=1e-9)
        rows = {a.key: [wire_pose(ee, a, base).tolist()] * 2 for a in schema(ee).arms}
        rows[arm.key] = [wire_pose(ee, arm, base).tolist(), [*base[:3], *case["euler_rpy"], base[9]]]
        result = parse_response(rows, observation(), ee, schema(ee), 0.0, 0.0)
        delta = rot6d_to_matrix(result.actions[0, 3:9])
        np.testing.assert_allclose(delta @ rot6d_to_matrix(base[3:9]), case["matrix"], atol=1e-9)


def test_the_chunk_is_the_wall_x_models_own_output_from_the_rows_wall_x_serialises(ee):
    """Rows written by wall-x's own serialiser (desktop robot, relative 6-D model, 26 columns with padding)
    from a model output: our client gives back that model output — relative positions, relative rotations
    (R = dR · R_state, as wall-x composes), absolute grippers — and its raw predict_action reply the same
    columns in the contract's slots."""
    import json

    reference = json.loads((REFERENCE.parent / "wallx_serialize_reference.json").read_text())
    assert [k for k, _ in reference["dof_config"]][:6] == [
        "follow_left_ee_cartesian_pos_relative", "follow_left_ee_rotation_6D_relative", "follow_left_gripper",
        "follow_right_ee_cartesian_pos_relative", "follow_right_ee_rotation_6D_relative", "follow_right_gripper"]
    for case in reference["cases"]:
        state = []
        for key in ("follow1_pos", "follow2_pos"):
            pose = np.asarray(case["state"][key])
            state += [*pose[:3], *matrix_to_rot6d(zyx_matrix(*pose[3:6])), pose[6]]
        obs = Observation({}, np.array(state), "pick up the cup")
        model = np.asarray(case["predict_action"])[0]
        result = parse_response(case["response"], obs, ee, schema(ee), 0.0, 0.0)
        for start in (0, 10):
            np.testing.assert_allclose(result.actions[:, start:start + 3], model[:, start:start + 3], atol=1e-7)
            np.testing.assert_allclose(rot6d_to_matrix(result.actions[:, start + 3:start + 9]),
                                       rot6d_to_matrix(model[:, start + 3:start + 9]), atol=1e-6)
            np.testing.assert_allclose(result.actions[:, start + 9], model[:, start + 9], atol=1e-7)
        raw = parse_response({"predict_action": case["predict_action"]}, obs, ee,
                             schema(ee, response="predict_action"), 0.0, 0.0)
        np.testing.assert_array_equal(raw.actions, model[:, :20])
