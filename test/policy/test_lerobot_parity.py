"""Side by side with LeRobot's own wall_x: a policy LeRobot saved loads, and gives LeRobot's numbers.

test/data/lerobot_wall_x/ was written outside this project by LeRobot's code (huggingface/lerobot
7427f31, src/lerobot/policies/wall_x): policy/ is what WallXPolicy.save_pretrained and the processors'
save_pretrained wrote over base/ (a tiny fan-in-initialised checkpoint of this project's generator);
expected.npz holds what LeRobot's pre-processor → predict_action_chunk → post-processor computed for
three fixed cases (expected.json: how, with which versions). "bf16" is LeRobot as it runs; "fp32" is the
same model in float32 (LeRobot needs one line patched for that: its predict casts the state embedding to
bf16 unconditionally). Only the numbers are LeRobot's; no LeRobot code is here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from test.support.ros_process import REPO_ROOT
from wall_oss_ros.policy.backend import Observation
from wall_oss_ros.policy.wall_oss.checkpoint import CheckpointError

FIXTURE = REPO_ROOT / "test" / "data" / "lerobot_wall_x"
CASES = (0, 1, 2)


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(FIXTURE / "expected.npz")), json.loads((FIXTURE / "expected.json").read_text())


def case_observation(seed: int, info: dict) -> Observation:
    """The case's inputs, built as the fixture's recipe says (uint8 frame; LeRobot got it as float / 255)."""
    image = np.random.default_rng(seed).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    state = (np.linspace(-0.5, 0.5, 14) + 0.1 * seed).astype(np.float32).astype(float)
    return Observation({"top": image}, state, info["cases"][f"case{seed}"]["task_given"])


@pytest.fixture(scope="module")
def lerobot_fp32(aloha):
    """Our float32 runtime, with the rotary frequencies rounded to bf16 as they are in LeRobot's fp32 run: that
    run is LeRobot's model (built in bf16: `.to(bfloat16)` casts the inv_freq buffers too) upcast by .float()."""
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    backend = WallOssBackend(FIXTURE / "policy", aloha, device="cpu", dtype=torch.float32)
    for name, buffer in backend.model.named_buffers():
        assert "inv_freq" in name, name  # the only buffers: weights are exactly the saved (bf16-rounded) ones
        buffer.data = buffer.data.to(torch.bfloat16).float()
    return backend


@pytest.fixture(scope="module")
def lerobot_bf16(aloha):
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    return WallOssBackend(FIXTURE / "policy", aloha, device="cpu", dtype=torch.bfloat16)


def test_the_saved_policy_is_the_lerobot_way(lerobot_fp32):
    from safetensors import safe_open

    with safe_open(str(FIXTURE / "policy" / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "model.lm_head.weight" in keys and "model.model.embed_tokens.weight" not in keys
    assert lerobot_fp32.layout == "lerobot" and lerobot_fp32.prediction_mode == "flow"
    assert lerobot_fp32.model.model.embed_tokens.weight.shape[0] == len(lerobot_fp32.processor.tokenizer)


@pytest.mark.parametrize("seed", CASES)
def test_tokens_pixels_and_state_are_lerobots(lerobot_fp32, expected, seed):
    arrays, info = expected
    inputs = lerobot_fp32.processor(case_observation(seed, info))
    np.testing.assert_array_equal(inputs.input_ids[0].numpy(), arrays[f"case{seed}_input_ids"])
    np.testing.assert_array_equal(inputs.image_grid_thw.numpy(), arrays[f"case{seed}_image_grid_thw"])
    np.testing.assert_allclose(inputs.pixel_values.numpy(), arrays[f"case{seed}_pixel_values"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(inputs.proprio[0, 0].numpy(), arrays[f"case{seed}_proprioception"], atol=1e-6)
    np.testing.assert_array_equal(inputs.proprio_mask[0, 0].numpy(), arrays[f"case{seed}_agent_pos_mask"])
    np.testing.assert_array_equal(inputs.dof_mask[0].numpy(), arrays[f"case{seed}_dof_mask"])


@pytest.mark.parametrize("cached", [True, False], ids=["kv-cache", "full-recompute"])
@pytest.mark.parametrize("seed", CASES)
def test_fp32_chunk_equals_lerobots(lerobot_fp32, expected, seed, cached):
    arrays, info = expected
    lerobot_fp32.use_prefix_cache = cached
    noise = torch.from_numpy(arrays[f"case{seed}_noise"])[None]
    actions = lerobot_fp32.infer(case_observation(seed, info), noise=noise).actions
    reference = arrays[f"case{seed}_actions_fp32"]
    # eager (LeRobot) vs SDPA attention, recompute vs prefix cache: float32 rounding only (5e-7 measured)
    np.testing.assert_allclose(actions, reference, atol=1e-5, rtol=0)
    other = arrays[f"case{(seed + 1) % 3}_actions_fp32"]
    assert np.abs(other - reference).max() > 1e4 * 1e-5  # the cases differ: the tolerance can tell them apart


@pytest.mark.parametrize("seed", CASES)
def test_bf16_chunk_equals_lerobots_within_bf16_rounding(lerobot_bf16, expected, seed):
    arrays, info = expected
    noise = torch.from_numpy(arrays[f"case{seed}_noise"])[None]
    actions = lerobot_bf16.infer(case_observation(seed, info), noise=noise).actions
    reference = arrays[f"case{seed}_actions_bf16"]
    span = reference.max() - reference.min()
    error = np.abs(actions - reference).max()
    # bf16 carries 8 significant bits; LeRobot's own fp32 and bf16 runs differ by about 1 % of the span
    fp32_vs_bf16 = np.abs(arrays[f"case{seed}_actions_fp32"] - reference).max()
    assert error < 0.01 * span and error <= 1.5 * fp32_vs_bf16 + 1e-3


def test_a_contract_with_other_views_is_refused(aloha):
    from dataclasses import replace

    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    front = replace(aloha, cameras=tuple(replace(c, view="front view") for c in aloha.cameras))
    with pytest.raises(CheckpointError, match=r"fine-tuned with the views \['top view'\]"):
        WallOssBackend(FIXTURE / "policy", front, device="cpu")


def test_a_policy_config_field_that_changes_the_math_is_refused(aloha, tmp_path):
    import shutil

    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    shutil.copytree(FIXTURE, tmp_path / "fixture")
    config_file = tmp_path / "fixture" / "policy" / "config.json"
    config = json.loads(config_file.read_text())
    for field, value, message in (("use_peft", True, "use_peft=true"), ("n_obs_steps", 2, "n_obs_steps=2"),
                                  ("normalization_mapping", {"STATE": "MIN_MAX"}, "normalization_mapping="),
                                  ("new_lerobot_option", 1, "new_lerobot_option is an unknown field")):
        config_file.write_text(json.dumps({**config, field: value}))
        with pytest.raises(CheckpointError, match=message):
            WallOssBackend(tmp_path / "fixture" / "policy", aloha, device="cpu")
