"""Architecture sizes of WALL-OSS-0.5 as author config.json mappings: the published one and CPU stand-ins.

`real` is the Qwen2.5-VL-3B backbone (text 2048 wide, 36 layers, 16 heads, 2 KV heads, intermediate 11008,
mrope [16, 24, 24]; vision depth 32, width 1280, intermediate 3420, full attention in blocks 7/15/23/31)
with the 0.5 action expert: 1024 wide (`dim_inputs [2048, 1024]`, `action_hidden_size 1024`, LeRobot's
port: "1024-wide action expert"). Two values no public source states: the action expert's intermediate
size (2048 here, from a third-party port) and the embedding's rows (Qwen2.5-VL-3B's 151936, which holds
the two added tokens at 151665/151666); a real checkpoint's own config.json and weights decide both when
it loads. `small` keeps compute, not Python, dominant on a CPU; `tiny` is the test checkpoint's size.
"""

from __future__ import annotations

from typing import Any

from wall_oss_ros.policy.wall_oss.size_profiles import BACKBONE_TEXT, BACKBONE_VISION, SIZES

REAL_VOCAB_ROWS = 151_936  # Qwen2.5-VL-3B's embedding (the backbone profile's vocab_size)

_ACTION_EXPERT = {"real": (1024, 2048), "small": (256, 512), "tiny": (32, 48)}  # (hidden, intermediate)
QWEN_TOKEN_IDS = {"image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
                  "vision_end_token_id": 151653}


def size_config(size: str, token_ids: dict[str, int] | None = None) -> dict[str, Any]:
    """The author config.json's shape (nested text / vision configs) at the given size."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    text, vision = dict(BACKBONE_TEXT[size]), BACKBONE_VISION[size]
    hidden = text["hidden_size"]
    expert_hidden, expert_intermediate = _ACTION_EXPERT[size]
    ids = dict(QWEN_TOKEN_IDS if size == "real" else {
        k: text["vocab_size"] - 1 - i for i, k in enumerate(QWEN_TOKEN_IDS)})
    ids.update(token_ids or {})
    rope = {"type": "mrope", "mrope_section": text.pop("mrope_section")}
    ends = {"bos_token_id": 151643, "eos_token_id": 151645} if size == "real" else {
        "bos_token_id": text["vocab_size"] - 6, "eos_token_id": text["vocab_size"] - 7}
    text_config = {"model_type": "qwen2_5_vl_text", **text, "hidden_act": "silu", "rms_norm_eps": 1e-6,
                   "max_position_embeddings": 128_000, "rope_theta": 1e6, "rope_scaling": rope,
                   "attention_dropout": 0.0, "use_sliding_window": False, "tie_word_embeddings": True, **ends}
    vision_config = {**vision, "out_hidden_size": hidden, "patch_size": 14, "spatial_merge_size": 2,
                     "temporal_patch_size": 2, "window_size": 112, "in_channels": 3, "tokens_per_second": 2,
                     "hidden_act": "silu"}
    return {"architectures": ["Qwen2_5_VLMoEForAction"], "model_type": "qwen2_5_vl", "text_config": text_config,
            "vision_config": vision_config, "rope_scaling": rope, "tie_word_embeddings": True,
            **{k: ids[k] for k in QWEN_TOKEN_IDS},
            "num_experts": 2, "attention_moe": True, "mlp_moe": True, "norm_moe": True,
            "dim_inputs": [hidden, expert_hidden],
            "experts": [{"hidden_size": hidden, "intermediate_size": text["intermediate_size"]},
                        {"hidden_size": expert_hidden, "intermediate_size": expert_intermediate}],
            "action_hidden_size": expert_hidden,
            "noise_scheduler": {"beta_alpha": 1.5, "beta_beta": 1.0, "s": 0.999, "time_shift": 1.0}}
