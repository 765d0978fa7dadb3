"""WALL-OSS-0.5 side by side with LeRobot's port (PR #4200): the tiny checkpoint this project writes, given
to the port outside the project, and the numbers it computed (test/data/wall_oss_05_reference/expected.json,
its `procedure` says how). Here the same checkpoint, frame, state, task and noise go through this runtime.

Figures: token ids, attention mask and image grid equal; pixel values to 1e-6 (sum and first values); the
state text equal (with a slot exactly at q01, one past q99 and one below q01: bins 0, 511, 0); the first
denoising step's velocity and the 10-step chunk, normalised and in robot units, to 1e-5 in float32, on both
the prefix-cache and the full-recompute path (measured on 2026-12-01: the full recompute equals the port's
normalised chunk exactly, the prefix cache to 6e-7, for a chunk spanning 8.45). Real-size names and
shapes: the port's 901 weights on the meta device equal this model's. A policy LeRobot saved loads too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from wall_oss_ros.policy.backend import Observation

DATA = Path(__file__).resolve().parents[1] / "data" / "wall_oss_05_reference"


@pytest.fixture(scope="module")
def expected():
    return json.loads((DATA / "expected.json").read_text())


def reference_inputs() -> tuple[np.ndarray, np.ndarray]:
    """The frame (480×640, a gradient with noise) and the (1, 32, 26) noise the port was given."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:480, 0:640]
    image = np.stack([xx / 640 * 255, yy / 480 * 255, (xx + yy) % 256], -1) + rng.normal(0, 20, (480, 640, 3))
    image = np.clip(image, 0, 255).astype(np.uint8)
    return image, rng.standard_normal((1, 32, 26)).astype(np.float32)


@pytest.fixture(scope="module")
def case(expected, checkpoints_05, aloha):
    from wall_oss_ros.policy.wall_oss_05.backend_wall_oss_05 import WallOss05Backend

    image, noise = reference_inputs()
    assert hashlib.sha256(image.tobytes()).hexdigest() == expected["inputs"]["image_sha256"]
    assert hashlib.sha256(noise.tobytes()).hexdigest() == expected["inputs"]["noise_sha256"]
    backend = WallOss05Backend(checkpoints_05["x-square"], aloha, device="cpu")
    state = np.asarray(expected["inputs"]["state"])[: aloha.action_dim]  # ALOHA's 14 slots; the rest padded 0
    return backend, Observation({"top": image}, state, expected["instruction"]), torch.from_numpy(noise)


def test_inputs_equal_the_ports(case, expected):
    backend, obs, _ = case
    assert backend.processor.state_string(obs.state) == expected["state_text"]
    inputs = backend.processor(obs)
    assert inputs.input_ids[0].tolist() == expected["input_ids"]
    assert inputs.attention_mask[0].tolist() == expected["attention_mask"]
    assert inputs.image_grid_thw.tolist() == expected["image_grid_thw"]
    assert list(inputs.pixel_values.shape) == expected["pixel_values_shape"]
    assert float(inputs.pixel_values.double().sum()) == pytest.approx(expected["pixel_values_sum"], rel=1e-6)
    np.testing.assert_allclose(inputs.pixel_values.flatten()[:16].numpy(), expected["pixel_values_first"], atol=1e-6)


@pytest.mark.parametrize("use_cache", [True, False])
def test_the_chunk_equals_the_ports(case, expected, use_cache):
    backend, obs, noise = case
    captured: list[torch.Tensor] = []
    hook = backend.model.action_preprocessor.action_proj_back.register_forward_hook(
        lambda _m, _i, out: captured.append(out.detach().clone()))
    backend.use_prefix_cache = use_cache
    try:
        result = backend.infer(obs, noise=noise)
        normalized = backend._sample_flow(obs, None, noise)
    finally:
        hook.remove()
        backend.use_prefix_cache = True
    np.testing.assert_allclose(captured[0].reshape(32, 26).numpy(), expected["first_velocity"], atol=1e-5)
    np.testing.assert_allclose(normalized, expected["actions_normalized"], atol=1e-5)
    reference = np.asarray(expected["actions"])[:, backend.processor.action_index]
    np.testing.assert_allclose(result.actions, reference, atol=1e-5)
    assert np.ptp(reference) > 0.5  # a chunk, not a constant


def test_real_size_weights_are_the_ports_on_the_meta_device():
    from wall_oss_ros.policy.wall_oss_05.configuration_wall_oss_05 import WallOss05Config
    from wall_oss_ros.policy.wall_oss_05.modeling_wall_oss_05 import WallOss05ForAction
    from wall_oss_ros.policy.wall_oss_05.size_profiles_wall_oss_05 import size_config

    reference = json.loads((DATA / "real_keys.json").read_text())
    config = WallOss05Config.from_dict(size_config("real")).with_vocab_rows(reference["vocab_rows"])
    with torch.device("meta"):
        model = WallOss05ForAction(config, action_token_id=151666)
    ours = sorted([k, list(v.shape)] for k, v in model.state_dict().items() if k != "lm_head.weight")
    assert len(reference["keys"]) == 901  # + 160 normaliser tensors = the conversion's 1,061
    assert ours == sorted(reference["keys"])


def test_a_policy_lerobot_saved_itself_loads_and_gives_the_ports_chunk(expected, aloha):
    """lerobot_saved/ is what the port's `WallOSS05Policy.save_pretrained` and its processors'
    `save_pretrained` wrote for the same tiny checkpoint (LeRobot 544a7e4, run outside the project; LeRobot
    reloaded it with `from_pretrained`): no normaliser tensors, the vision MLP fused, the stats in the
    pre/post-processors' files, only the four tokenizer/processor files the port copies."""
    from wall_oss_ros.policy.loader import load_backend

    image, noise = reference_inputs()
    backend, found = load_backend(DATA / "lerobot_saved", aloha, device="cpu")
    assert found.startswith("a wall-oss-0.5 checkpoint") and backend.layout == "lerobot"
    assert backend.normalizer_tensors == 0
    state = np.asarray(expected["inputs"]["state"])[: aloha.action_dim]
    result = backend.infer(Observation({"top": image}, state, expected["instruction"]), noise=torch.from_numpy(noise))
    np.testing.assert_allclose(result.actions, np.asarray(expected["actions"])[:, backend.processor.action_index],
                               atol=1e-5)
