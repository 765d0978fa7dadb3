"""Fuzzing every decoder of data from others: only the documented validation error, never a crash, and a
chunk that decodes can never make the executor command outside its limits."""

from __future__ import annotations

import contextlib
import copy
import os

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import CompressedImage, Image, JointState

from test.support.executor_run import Recording, check_limits, measured_from_commands
from test.support.robots import contract, rest_state
from wall_oss_ros.core.contract import ContractError, parse_contract
from wall_oss_ros.core.executor import Executor
from wall_oss_ros.core.resources import config_path
from wall_oss_ros.msg import ActionChunk
from wall_oss_ros.ros.conversions import ConversionError, chunk_from_msg, image_to_rgb, joint_positions, sec_to_stamp

EXAMPLES = int(os.environ.get("WALL_OSS_ROS_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
C = contract("aloha_bimanual")
encodings = st.sampled_from(["rgb8", "bgr8", "mono8", "rgba8", "16UC1", "bayer_rggb8", "", "RGB8", "jpeg"]) | st.text(
    max_size=12)


@FUZZ
@given(height=st.integers(0, 40), width=st.integers(0, 40), step=st.integers(0, 200), encoding=encodings,
       data=st.binary(max_size=6000))
def test_raw_images(height, width, step, encoding, data):
    msg = Image(height=height, width=width, step=step, encoding=encoding, data=data)
    try:
        rgb = image_to_rgb(msg)
    except ConversionError:
        return
    assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8


@FUZZ
@given(data=st.binary(max_size=4000), fmt=st.text(max_size=20))
def test_compressed_images(data, fmt):
    try:
        rgb = image_to_rgb(CompressedImage(format=fmt, data=data))
    except ConversionError:
        return
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8


def test_real_image_codecs_survive_bit_flips():
    import cv2

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)
    for ext in (".jpg", ".png"):
        good = bytearray(cv2.imencode(ext, pixels)[1].tobytes())
        for _ in range(200):
            bad = bytearray(good)
            for i in rng.integers(0, len(bad), 8):
                bad[i] ^= int(rng.integers(1, 256))
            bad = bad[: int(rng.integers(1, len(bad) + 1))]
            try:
                rgb = image_to_rgb(CompressedImage(format=ext, data=bytes(bad)))
            except ConversionError:
                continue
            assert rgb.dtype == np.uint8 and rgb.shape[2] == 3


floats = st.floats(allow_nan=True, allow_infinity=True) | st.floats(-10, 10)


@FUZZ
@given(names=st.lists(st.text(max_size=30), max_size=20), positions=st.lists(floats, max_size=20))
def test_joint_states(names, positions):
    try:
        out = joint_positions(JointState(name=names, position=positions))
    except ConversionError:
        return
    assert len(names) == len(positions) and set(out) == set(names)


@FUZZ
@given(horizon=st.integers(0, 40), dim=st.integers(0, 20), n_values=st.integers(0, 400),
       names=st.lists(st.sampled_from(list(C.action_names)) | st.text(max_size=10), max_size=20),
       dt=floats, t_offset=st.floats(-3, 1), values=floats, seed=st.integers(0, 2**31),
       state_names=st.lists(st.sampled_from(list(C.action_names)), max_size=16), state_fill=floats)
def test_action_chunks_decode_or_fail_cleanly_and_never_break_the_limits(horizon, dim, n_values, names, dt, t_offset,
                                                                         values, seed, state_names, state_fill):
    rng = np.random.default_rng(seed)
    msg = ActionChunk(chunk_id=seed, horizon=horizon, dim=dim, action_names=names, dt_s=dt)
    msg.header.stamp = sec_to_stamp(max(0.0, 10.0 + t_offset))
    base = rng.normal(0, 2, n_values)
    base[rng.random(n_values) < 0.05] = values
    msg.values = base.tolist()
    msg.state_names = state_names
    msg.state = [state_fill] * len(state_names)
    try:
        chunk = chunk_from_msg(msg)
    except ConversionError:
        return
    ex = Executor(C)
    rec = Recording()
    now = 10.0
    ex.tick(now, rest_state(C, now))
    ex.start(now)
    rec.add(ex.tick(now + 0.01, rest_state(C, now + 0.01)))
    now += 0.01
    outcome = ex.on_chunk(chunk, now)
    assert outcome.accepted or outcome.reason
    for _ in range(60):
        now += 0.01
        rec.add(ex.tick(now, measured_from_commands(ex, now, rest_state(C, now))))
    check_limits(ex, rec)


VALID = yaml.safe_load(config_path("robots", "aloha_bimanual.yaml").read_text())


def _paths(node, prefix=()):  # every key path in a YAML tree
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


PATHS = list(_paths(VALID))
junk = st.none() | st.booleans() | st.integers(-5, 50) | floats | st.text(max_size=8) | st.lists(
    st.integers(-2, 30) | floats, max_size=8) | st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)


@FUZZ
@given(edits=st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from(["set", "delete"]), junk), min_size=1,
                      max_size=4))
def test_contract_yaml_mutations_give_contract_errors_only(edits):
    doc = copy.deepcopy(VALID)
    for path, action, value in edits:
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            if action == "delete":
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        parse_contract(doc, "fuzz.yaml", config_path("robots"))
    except ContractError as exc:
        assert str(exc).startswith("fuzz.yaml: ")  # names the file and the key


@FUZZ
@given(text=st.text(max_size=300))
def test_contract_from_arbitrary_yaml_text(text):
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return
    with pytest.raises(ContractError):
        parse_contract(doc, "fuzz.yaml")


@pytest.fixture(scope="module")
def tiny_config(tiny_checkpoint):
    import json

    return json.loads((tiny_checkpoint / "config.json").read_text())


@settings(max_examples=max(30, EXAMPLES // 3), deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_checkpoint_config_mutations_give_config_errors_only(tiny_config, data):
    from wall_oss_ros.policy.wall_oss.configuration_wall_oss import ConfigError, WallOssConfig

    doc = copy.deepcopy(tiny_config)
    paths = list(_paths(doc))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            if data.draw(st.booleans()):
                del parent[path[-1]]
            else:
                parent[path[-1]] = data.draw(junk)
        except (KeyError, IndexError, TypeError):
            continue
    with contextlib.suppress(ConfigError):  # the only error allowed
        WallOssConfig.from_dict(doc)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(max_size=300), which=st.sampled_from(["config.json", "model.safetensors"]))
def test_corrupt_checkpoint_files_give_checkpoint_errors(tiny_checkpoint, tmp_path_factory, garbage, which):
    import shutil

    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend
    from wall_oss_ros.policy.wall_oss.checkpoint import CheckpointError
    from wall_oss_ros.policy.wall_oss.configuration_wall_oss import ConfigError

    broken = tmp_path_factory.mktemp("broken") / "ckpt"
    shutil.copytree(tiny_checkpoint, broken)
    (broken / which).write_bytes(garbage)
    with pytest.raises((CheckpointError, ConfigError)):
        WallOssBackend(broken, C, device="cpu")
