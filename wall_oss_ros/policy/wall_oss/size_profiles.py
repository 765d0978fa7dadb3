"""Architecture sizes of the flow family as config.json mappings: the published one and CPU stand-ins.

`real` is wall-oss-flow as its sources describe it: the Qwen2.5-VL-3B backbone (text 2048 wide, 36 layers,
16 heads, 2 KV heads, intermediate 11008; vision depth 32, width 1280, full attention in blocks 7/15/23/31)
plus an action expert of hidden 2048 and intermediate 2048 (`dim_inputs [2048, 2048]`), a 20-D dof
config (per arm EE position 3, rotation 3, gripper 1; head 2, lift 1, base 3), horizon 32, and an
embedding resized to the tokenizer's 153715 tokens (Qwen's 151665 + <|propri|>, <|action|>, <|action_fast|>
… and 2048 <|action_token_k|>). Sources: suolyer/wall-x@e23a586 workspace/lerobot_example/qwen25_config.json,
wall-x workspace/models_config/qwen2_5_moe_flash.json, LeRobot wall_x (max_action_dim 20).
`small` keeps compute, not Python, dominant on a CPU; `tiny` is the test checkpoint's size.
"""

from __future__ import annotations

from typing import Any

SIZES = ("tiny", "small", "real")
REAL_VOCAB_ROWS = 153_715  # len(tokenizer) of wall-oss-flow; config.json still says 151936
REAL_HORIZON = 32

# The published 20-D action / proprioception layout (upstream dof_config = agent_pos_config).
REAL_DOF_CONFIG = {
    "follow_left_ee_cartesian_pos": 3, "follow_left_ee_rotation": 3, "follow_left_gripper": 1,
    "follow_right_ee_cartesian_pos": 3, "follow_right_ee_rotation": 3, "follow_right_gripper": 1,
    "head_actions": 2, "height": 1, "car_pose": 3,
}

# Qwen2.5-VL special token ids (unchanged in the WALL-OSS tokenizer).
QWEN_TOKEN_IDS = {"bos_token_id": 151643, "eos_token_id": 151645, "vision_start_token_id": 151652,
                  "vision_end_token_id": 151653, "vision_token_id": 151654, "image_token_id": 151655,
                  "video_token_id": 151656}

BACKBONE_TEXT = {  # the Qwen2.5-VL text model of both families
    "real": dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                 num_key_value_heads=2, mrope_section=[16, 24, 24], vocab_size=151_936),
    "small": dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=8, num_attention_heads=8,
                  num_key_value_heads=2, mrope_section=[8, 12, 12], vocab_size=4096),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, mrope_section=[2, 3, 3], vocab_size=512),
}
BACKBONE_VISION = {  # its vision tower
    "real": dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16,
                 fullatt_block_indexes=[7, 15, 23, 31]),
    "small": dict(depth=4, hidden_size=256, intermediate_size=512, num_heads=4, fullatt_block_indexes=[3]),
    "tiny": dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, fullatt_block_indexes=[1]),
}
_EXPERT = {"real": (2048, 2048), "small": (512, 512), "tiny": (64, 96)}  # action expert (hidden, intermediate)


def size_config(size: str, dof_config: dict[str, int] | None = None,
                token_ids: dict[str, int] | None = None) -> dict[str, Any]:
    """A flat wall-oss-flow config.json of the given size (vocab_size as config.json states it)."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    text, vision = dict(BACKBONE_TEXT[size]), BACKBONE_VISION[size]
    hidden = text["hidden_size"]
    expert_hidden, expert_intermediate = _EXPERT[size]
    dof = dict(dof_config or REAL_DOF_CONFIG)
    ids = dict(QWEN_TOKEN_IDS if size == "real" else {
        k: text["vocab_size"] - 1 - i for i, k in enumerate(QWEN_TOKEN_IDS)})
    ids.update(token_ids or {})
    return {
        "architectures": ["Qwen2_5_VLMoEForAction"], "model_type": "qwen2_5_vl",
        **{k: text[k] for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                "num_attention_heads", "num_key_value_heads")},
        "hidden_act": "silu", "rms_norm_eps": 1e-6, "max_position_embeddings": 128_000, "rope_theta": 1e6,
        "rope_scaling": {"type": "mrope", "mrope_section": text["mrope_section"]}, "tie_word_embeddings": True,
        "use_sliding_window": False, "sliding_window": 32768, "max_window_layers": 70, **ids,
        "vision_config": {**{k: vision[k] for k in ("depth", "hidden_size", "intermediate_size", "num_heads",
                                                    "fullatt_block_indexes")},
                          "out_hidden_size": hidden, "patch_size": 14, "spatial_merge_size": 2,
                          "temporal_patch_size": 2, "window_size": 112, "in_channels": 3, "tokens_per_second": 2,
                          "hidden_act": "silu"},
        "num_experts": 2, "mlp_moe": True, "attention_moe": False, "dim_inputs": [hidden, expert_hidden],
        "experts": [{"hidden_size": hidden, "intermediate_size": text["intermediate_size"], "hidden_act": "silu"},
                    {"hidden_size": expert_hidden, "intermediate_size": expert_intermediate, "hidden_act": "silu"}],
        "dof_config": dof, "agent_pos_config": dict(dof),
        "noise_scheduler": {"beta_alpha": 1.5, "beta_beta": 1.0, "s": 0.999, "num_inference_timesteps": 10},
    }
