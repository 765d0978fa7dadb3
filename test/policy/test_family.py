"""The model family is told from a checkpoint's files, and a WALL-OSS-0.5 checkpoint is refused by name before
the flow loader reads any weight."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from test.policy.conftest import LAYOUTS
from wall_oss_ros.policy.family import FLOW, OSS_05, FamilyError, detect_family

# Names of the 0.5 layout (per-expert fused attention and norms); shapes are irrelevant to the family.
OSS_05_KEYS = ("model.layers.0.input_layernorms.0.weight", "model.layers.0.input_layernorms.1.weight",
               "model.layers.0.self_attn.qkv_proj_experts.0.weight", "model.layers.0.self_attn.qkv_proj_experts.0.bias",
               "model.layers.0.moe.experts.1.gate_up_proj.weight", "model.norms.0.weight", "model.embed_tokens.weight")


def oss_05_checkpoint(directory, sharded: bool = False):
    """The x-square-robot/wall-oss-0.5 file set as far as the family is concerned: its config and weights."""
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl", "dim_inputs": [2048, 1024]}))
    tensors = {k: torch.zeros(2) for k in OSS_05_KEYS}
    if sharded:
        save_file(tensors, str(directory / "model-00001-of-00001.safetensors"))
        weight_map = dict.fromkeys(tensors, "model-00001-of-00001.safetensors")
        (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    else:
        save_file(tensors, str(directory / "model.safetensors"))
    return directory


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_flow_layout_is_detected_as_flow(checkpoints, layout):
    family, evidence = detect_family(checkpoints[layout])
    assert family == FLOW, evidence


@pytest.mark.parametrize("sharded", [False, True])
def test_a_wall_oss_05_checkpoint_is_refused_by_the_flow_loader_naming_its_family(tmp_path, aloha, sharded):
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    ckpt = oss_05_checkpoint(tmp_path / "wall-oss-0.5", sharded)
    assert detect_family(ckpt)[0] == OSS_05
    with pytest.raises(FamilyError, match=r"a wall-oss-0\.5 checkpoint \(it holds model\.layers\.0\..*\), but this "
                                          r"loader runs wall-oss-flow checkpoints; load it with .*load_backend"):
        WallOssBackend(ckpt, aloha, device="cpu")


def test_a_lerobot_wall_oss_05_policy_is_refused_by_its_type(tmp_path, aloha, checkpoints):
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    policy = tmp_path / "policy"
    shutil.copytree(checkpoints["lerobot"], policy)  # flow weights, but the policy says what it is
    config = json.loads((policy / "config.json").read_text())
    (policy / "config.json").write_text(json.dumps({**config, "type": "wall_oss_05"}))
    with pytest.raises(FamilyError, match=r'config\.json says "type": "wall_oss_05"'):
        WallOssBackend(policy, aloha, device="cpu")


def test_unreadable_or_missing_weights_leave_the_family_open_and_the_loader_names_the_damage(tmp_path, aloha,
                                                                                              checkpoints):
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend
    from wall_oss_ros.policy.wall_oss.checkpoint import CheckpointError

    broken = tmp_path / "broken"
    shutil.copytree(checkpoints["transformers"], broken)
    (broken / "model.safetensors").write_bytes(b"\x00garbage")
    assert detect_family(broken) == (None, "its weights are unreadable")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        WallOssBackend(broken, aloha, device="cpu")
    (broken / "model.safetensors").unlink()
    assert detect_family(broken) == (None, "neither family's weight names were found")
