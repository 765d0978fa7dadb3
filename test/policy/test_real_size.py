"""The `real` size profile is the published wall-oss-flow architecture, parameter for parameter.

test/data/wall_oss_flow_real_state_dict.json lists the state dict of LeRobot's own Qwen2_5_VLMoEForAction
(huggingface/lerobot 7427f31) built on the meta device with wall-x's published config sizes and the
embedding resized to the tokenizer's 153715 tokens: 938 entries, the tied lm_head included.
"""

from __future__ import annotations

import json

import torch

from test.support.ros_process import REPO_ROOT
from wall_oss_ros.policy.wall_oss.configuration_wall_oss import WallOssConfig
from wall_oss_ros.policy.wall_oss.modeling_wall_oss import WallOssForAction
from wall_oss_ros.policy.wall_oss.size_profiles import REAL_VOCAB_ROWS, size_config

REFERENCE = REPO_ROOT / "test" / "data" / "wall_oss_flow_real_state_dict.json"


def test_real_profile_has_the_reference_names_and_shapes():
    reference = json.loads(REFERENCE.read_text())
    config = WallOssConfig.from_dict(size_config("real")).with_vocab_rows(REAL_VOCAB_ROWS)
    with torch.device("meta"):  # no memory: 4 B parameters
        model = WallOssForAction(config, action_token_id=151666, propri_token_id=151665)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert len(ours) == reference["num_entries"] == 938
    assert sorted(set(ours) ^ set(reference["state_dict"])) == []
    wrong = {k: (ours[k], reference["state_dict"][k]) for k in ours if ours[k] != reference["state_dict"][k]}
    assert wrong == {}
    assert model.lm_head.weight is model.model.embed_tokens.weight
    expert = [k for k in ours if k.startswith("model.layers.0.moe.experts.1.")]
    assert {k.rsplit(".", 2)[-2]: ours[k] for k in expert} == {"gate_proj": [2048, 2048], "up_proj": [2048, 2048],
                                                               "down_proj": [2048, 2048]}
    assert config.action_dim == 20 and ours["model.embed_tokens.weight"] == [153715, 2048]
    params = sum(v.numel() for k, v in model.state_dict().items() if k != "lm_head.weight")
    assert 4.0e9 < params < 4.3e9  # Qwen2.5-VL-3B + a 2048-wide expert in every layer


def test_the_published_config_loads_as_the_real_profile():
    """test/data/wall_x_qwen25_config.json: the 39 keys of wall-x's workspace/lerobot_example/qwen25_config.json
    (suolyer/wall-x@e23a586), equal to the source file. Every one is computed or inert; the architecture is `real`'s."""
    published = WallOssConfig.from_dict(json.loads((REPO_ROOT / "test" / "data" / "wall_x_qwen25_config.json")
                                                   .read_text()))
    real = WallOssConfig.from_dict(size_config("real"))
    for field in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                  "num_key_value_heads", "vocab_size", "rms_norm_eps"):
        assert getattr(published.text, field) == getattr(real.text, field), field
    for field in ("depth", "hidden_size", "intermediate_size", "num_heads", "out_hidden_size", "patch_size",
                  "fullatt_block_indexes", "window_size", "in_channels"):
        assert getattr(published.vision, field) == getattr(real.vision, field), field
    assert (published.experts, published.dim_inputs, published.dof_config) == (real.experts, real.dim_inputs,
                                                                               real.dof_config)
