"""WALL-OSS-0.5 on the tiny checkpoint: the prefix cache is exact, both layouts load strictly and agree, the
families refuse each other's checkpoints, and the model reacts to every input it is given."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from wall_oss_ros.policy.backend import Observation
from wall_oss_ros.policy.family import FamilyError
from wall_oss_ros.policy.wall_oss.checkpoint import CheckpointError


def observation(aloha, seed: int = 0, instruction: str = "insert the peg into the socket", state=None):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    state = np.zeros(aloha.action_dim) if state is None else state
    return Observation({c.name: image for c in aloha.cameras}, np.asarray(state, float), instruction)


def sample(backend, obs, use_cache: bool, noise: torch.Tensor) -> torch.Tensor:
    inputs = backend._on_device(backend.processor(obs))
    with torch.inference_mode():
        return backend.model.sample_actions(inputs, noise, 10, use_prefix_cache=use_cache)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prefix_cache_equals_full_recompute_fp32(backend_05, aloha, seed):
    noise = torch.randn(1, 32, 26, generator=torch.Generator().manual_seed(seed))
    obs = observation(aloha, seed)
    cached, full = sample(backend_05, obs, True, noise), sample(backend_05, obs, False, noise)
    assert cached.abs().max() > 0.1
    assert (cached - full).abs().max().item() <= 1e-5


def test_prefix_cache_equals_full_recompute_bf16(checkpoints_05, aloha):
    """bf16 (norms and the action head in fp32, as the release keeps them): the two paths round differently
    (the prefix in one pass, or again every step), so they agree to bf16's resolution, not bit for bit."""
    from wall_oss_ros.policy.wall_oss_05.backend_wall_oss_05 import WallOss05Backend

    backend = WallOss05Backend(checkpoints_05["x-square"], aloha, device="cpu", dtype=torch.bfloat16)
    assert backend.model.model.layers[0].self_attn.qkv_proj_experts[0].weight.dtype == torch.bfloat16
    assert backend.model.model.layers[0].input_layernorms[1].weight.dtype == torch.float32
    assert backend.model.action_preprocessor.w1.weight.dtype == torch.float32
    noise = torch.randn(1, 32, 26, generator=torch.Generator().manual_seed(0))
    obs = observation(aloha)
    cached, full = sample(backend, obs, True, noise), sample(backend, obs, False, noise)
    assert torch.isfinite(cached).all()
    assert (cached - full).abs().max().item() <= 0.05 * cached.abs().max().item()


def test_both_layouts_load_strictly_and_give_the_same_chunk(checkpoints_05, aloha):
    from wall_oss_ros.policy.wall_oss_05.backend_wall_oss_05 import WallOss05Backend

    obs = observation(aloha)
    chunks = {}
    for layout, path in checkpoints_05.items():
        backend = WallOss05Backend(path, aloha, device="cpu")
        assert backend.layout == layout and backend.normalizer_tensors == 4  # min / delta of action and propri
        chunks[layout] = backend.infer(obs, noise=torch.zeros(1, 32, 26)).actions
    np.testing.assert_allclose(chunks["x-square"], chunks["lerobot"], atol=1e-5)


@pytest.mark.parametrize("damage", ["missing", "unexpected", "shape"])
def test_a_key_out_of_place_is_refused_by_name(tmp_path, checkpoints_05, aloha, damage):
    from wall_oss_ros.policy.wall_oss_05.backend_wall_oss_05 import WallOss05Backend

    broken = tmp_path / "broken"
    shutil.copytree(checkpoints_05["x-square"], broken)
    state = load_file(str(broken / "model.safetensors"))
    key = "model.layers.1.self_attn.o_proj_experts.1.weight"
    if damage == "missing":
        del state[key]
    elif damage == "unexpected":
        state["model.layers.1.self_attn.q_proj.weight"] = state[key].clone()
    else:
        state[key] = state[key][:, :-1].contiguous()
    save_file(state, str(broken / "model.safetensors"))
    expected = {"missing": f"1 missing keys \\['{key}'", "unexpected": "1 unexpected keys",
                "shape": f"{key} has shape"}[damage]
    with pytest.raises(CheckpointError, match=expected):
        WallOss05Backend(broken, aloha, device="cpu")


def test_the_families_refuse_each_others_checkpoints_by_name(checkpoints_05, tiny_checkpoint, aloha):
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend
    from wall_oss_ros.policy.wall_oss_05.backend_wall_oss_05 import WallOss05Backend

    with pytest.raises(FamilyError, match=r"a wall-oss-flow checkpoint .* this loader runs wall-oss-0\.5"):
        WallOss05Backend(tiny_checkpoint, aloha, device="cpu")
    with pytest.raises(FamilyError, match=r'a wall-oss-0\.5 checkpoint \(its config\.json says "type": "wall_oss_05"'):
        WallOssBackend(checkpoints_05["lerobot"], aloha, device="cpu")


def test_the_loader_picks_the_family_and_says_which(checkpoints_05, tiny_checkpoint, aloha):
    from wall_oss_ros.policy.loader import load_backend
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend
    from wall_oss_ros.policy.wall_oss_05.backend_wall_oss_05 import WallOss05Backend

    backend, found = load_backend(checkpoints_05["lerobot"], aloha, device="cpu")
    assert isinstance(backend, WallOss05Backend)
    assert found == 'a wall-oss-0.5 checkpoint (its config.json says "type": "wall_oss_05")'
    backend, found = load_backend(tiny_checkpoint, aloha, device="cpu")
    assert type(backend) is WallOssBackend and found.startswith("a wall-oss-flow checkpoint (it holds ")


def test_the_chunk_reacts_to_image_state_and_instruction(backend_05, aloha):
    noise = torch.randn(1, 32, 26, generator=torch.Generator().manual_seed(4))
    base = backend_05.infer(observation(aloha), noise=noise).actions
    state = np.zeros(aloha.action_dim)
    state[0] = 0.8
    for other in (observation(aloha, seed=9), observation(aloha, instruction="fold the towel"),
                  observation(aloha, state=state)):
        assert np.abs(backend_05.infer(other, noise=noise).actions - base).max() > 1e-2


def test_bad_inputs_name_the_field(backend_05, aloha):
    from wall_oss_ros.policy.wall_oss.processor_wall_oss import ObservationError

    obs = observation(aloha)
    with pytest.raises(ObservationError, match=r"state: not finite for \['left_arm/vx300s_left/elbow'\]"):
        state = np.zeros(aloha.action_dim)
        state[2] = np.nan
        backend_05.infer(Observation(obs.images, state, obs.instruction))
    with pytest.raises(ObservationError, match="images: camera 'top' is missing"):
        backend_05.infer(Observation({}, obs.state, obs.instruction))
    with pytest.raises(ObservationError, match="instruction: empty"):
        backend_05.infer(Observation(obs.images, obs.state, "  "))
    with pytest.raises(ValueError, match="flow branch only"):
        backend_05.processor(obs, action_tokens=False)


def test_lerobot_policy_fields_that_change_the_computation_are_refused(tmp_path, checkpoints_05, aloha):
    from wall_oss_ros.policy.wall_oss_05.backend_wall_oss_05 import WallOss05Backend

    policy = tmp_path / "policy"
    shutil.copytree(checkpoints_05["lerobot"], policy)
    config = json.loads((policy / "config.json").read_text())
    (policy / "config.json").write_text(json.dumps({**config, "max_action_dim": 32,
                                                    "normalization_mapping": {"STATE": "MEAN_STD"}}))
    with pytest.raises(CheckpointError, match=r"max_action_dim=32: WALL-OSS-0\.5 runs max_action_dim=26; "
                                              r"normalization_mapping="):
        WallOss05Backend(policy, aloha, device="cpu")


def test_subtask_generation_runs_through_the_language_expert(backend_05, aloha):
    backend_05.subtask_max_tokens = 4
    try:
        text = backend_05.subtask(observation(aloha))
        inputs = backend_05.processor.language_inputs(observation(aloha))
        ids = backend_05.model.generate_tokens(inputs, 4, set())
    finally:
        backend_05.subtask_max_tokens = 0
    assert len(ids) == 4 and isinstance(text, str)
    assert int((inputs.input_ids == backend_05.model.action_token_id).sum()) == 0


@pytest.mark.parametrize("name", ["aloha_bimanual", "bimanual_ee", "mobile_manipulator"])
def test_every_shipped_contract_maps_into_the_26_slots(tmp_path, name):
    """The 0.5 fine-tuning layouts through the robot contracts: ALOHA's 14 joints, the dual-arm relative
    position + 6-D rotation + gripper (20, padded to 26), and the mobile manipulator's base/lift/head slots."""
    from test.support.robots import contract
    from wall_oss_ros.policy.wall_oss_05.backend_wall_oss_05 import WallOss05Backend
    from wall_oss_ros.tools.make_tiny_checkpoint_05 import write

    c = contract(name)
    backend = WallOss05Backend(write(tmp_path / name, "x-square", name), c, device="cpu")
    state = np.zeros(len(backend.processor.state_index))
    images = {cam.name: np.full((240, 320, 3), 90, np.uint8) for cam in c.cameras}
    result = backend.infer(Observation(images, state, "tidy up"))
    assert result.actions.shape == (32, c.action_dim) and np.all(np.isfinite(result.actions))
    assert max(backend.processor.action_index) < 26 and len(backend.processor.state_string(state).split()) == 26


def test_rtc_guidance_inpaints_the_committed_prefix(backend_05, aloha):
    from test.policy.test_rtc import COMMITTED
    from wall_oss_ros.policy.backend import RtcRequest

    noise = backend_05.sample_noise()
    free = backend_05.infer(observation(aloha), noise=noise).actions
    guided = backend_05.infer(observation(aloha), rtc=RtcRequest(COMMITTED, 5), noise=noise)
    free_error = np.abs(free[:5] - COMMITTED[:5]).max()
    guided_error = np.abs(guided.actions[:5] - COMMITTED[:5]).max()
    assert guided.rtc_prefix_steps == 5 and free_error > 0.5
    assert guided_error < 0.1 * free_error and np.all(np.isfinite(guided.actions))


def test_the_subtask_replaces_the_task_in_the_action_prompt(backend_05, aloha):
    """Uni-CoT as wall-x serves WALL-OSS-0.5: subtask first, then the action prompt with it as the task; a
    blank answer (what the tiny random model gives: newlines) keeps the task."""
    obs = observation(aloha)
    acting = backend_05.acting_observation(obs, "pick up the peg")
    assert acting.instruction == "pick up the peg" and acting.state is obs.state
    assert backend_05.acting_observation(obs, "") is obs
    noise = backend_05.sample_noise()
    as_task = backend_05.infer(observation(aloha, instruction="pick up the peg"), noise=noise).actions
    np.testing.assert_allclose(backend_05.infer(acting, noise=noise).actions, as_task, atol=1e-6)
    backend_05.subtask_max_tokens = 3
    try:
        blank = backend_05.infer(obs, noise=noise)
    finally:
        backend_05.subtask_max_tokens = 0
    assert blank.subtask == ""
    np.testing.assert_allclose(blank.actions, backend_05.infer(obs, noise=noise).actions, atol=1e-6)


def test_author_statistics_from_norm_stats_pth_files_or_the_weights(tmp_path, checkpoints_05, aloha):
    """wall-x's order: norm_stats.json, else normalizer_*.pth (tensors, weights_only), else the normalisers
    stored in model.safetensors (the same values here, so the same chunk)."""
    from wall_oss_ros.policy.wall_oss_05.backend_wall_oss_05 import WallOss05Backend

    noise = torch.zeros(1, 32, 26)
    reference = WallOss05Backend(checkpoints_05["x-square"], aloha, device="cpu").infer(observation(aloha), noise=noise)
    copy = tmp_path / "ckpt"
    shutil.copytree(checkpoints_05["x-square"], copy)
    (copy / "norm_stats.json").unlink()
    embedded = WallOss05Backend(copy, aloha, device="cpu").infer(observation(aloha), noise=noise)
    np.testing.assert_allclose(embedded.actions, reference.actions, atol=1e-5)
    stats = load_file(str(copy / "model.safetensors"))
    for what in ("propri", "action"):
        scale = {"min": 1.0, "delta": 2.0}
        torch.save({f"{s}.tiny": stats[f"action_preprocessor.normalizer_{what}.{s}.tiny"] * scale[s] for s in scale},
                   copy / f"normalizer_{what}.pth")
    doubled = WallOss05Backend(copy, aloha, device="cpu").infer(observation(aloha), noise=noise)
    assert np.abs(doubled.actions - reference.actions).max() > 1e-2


def test_bf16_chunk_is_within_bf16_rounding_of_the_ports_fp32(checkpoints_05, aloha):
    from test.policy.test_wall_oss_05_reference import DATA, reference_inputs
    from wall_oss_ros.policy.wall_oss_05.backend_wall_oss_05 import WallOss05Backend

    expected = json.loads((DATA / "expected.json").read_text())
    image, noise = reference_inputs()
    backend = WallOss05Backend(checkpoints_05["x-square"], aloha, device="cpu", dtype=torch.bfloat16)
    state = np.asarray(expected["inputs"]["state"])[: aloha.action_dim]
    normalized = backend._sample_flow(Observation({"top": image}, state, expected["instruction"]), None,
                                      torch.from_numpy(noise))
    reference = np.asarray(expected["actions_normalized"])
    assert np.abs(normalized - reference).max() <= 0.05 * np.ptp(reference)
