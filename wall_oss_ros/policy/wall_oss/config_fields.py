"""Which config.json fields the wall-oss-flow runtime honours, which are metadata, and which it refuses.

A checkpoint whose config sets a field that changes the math in a way this runtime does not compute
must not load and silently compute something else (wall-x PR #102: a split-module loader "silently
skips ~700 tensors"). So every field is classified: computed here, inert for inference (training or
bookkeeping only), allowed only at the value this runtime computes, or unknown — and unknown is refused
by name, as is a math-changing field at another value.
"""

from __future__ import annotations

from typing import Any

# Fields read by configuration_wall_oss (the model is built from them).
COMPUTED = frozenset({
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps", "rope_theta",
    "rope_scaling", "rope_parameters", "tie_word_embeddings", "image_token_id", "video_token_id",
    "vision_start_token_id", "vision_end_token_id", "vision_token_id", "bos_token_id", "eos_token_id",
    "pad_token_id", "num_experts", "experts", "dim_inputs", "dof_config", "agent_pos_config",
    "vision_config", "text_config", "layer_types", "head_dim", "action_horizon_flow",
})

# Bookkeeping and training-only fields: they do not change what inference computes.
INERT = frozenset({
    "architectures", "model_type", "torch_dtype", "dtype", "transformers_version", "_name_or_path",
    "use_cache", "output_attentions", "output_hidden_states", "return_dict", "attention_dropout",
    "initializer_range", "auto_map", "_attn_implementation_autoset", "is_encoder_decoder",
    "chunk_size_feed_forward", "problem_type", "id2label", "label2id", "tokenizer_class", "task_specific_params",
    "noise_scheduler",  # training-time sampling (beta_alpha, beta_beta, s); time_shift is checked below
    "_attn_implementation",  # the backend of the reference's training (flash_attention_2); the mask is explicit here
    "attn_deterministic", "flow_loss_weight", "ar_loss_weight", "use_x_loss",  # training losses and kernels
    "adarms_cond_dim",  # read only with use_adarms (refused below)
    "use_lora", "lora_r", "lora_alpha", "lora_target_modules", "lora_dropout",  # a merged LoRA is plain weights
    "max_window_layers", "sliding_window",  # used only when use_sliding_window is true (refused below)
    "rope_deltas", "action_horizon", "torchscript", "pruned_heads", "tie_encoder_decoder",
})

# Math-changing fields this runtime computes only at one value: (value it computes, what the other means).
PINNED: dict[str, tuple[Any, str]] = {
    "mlp_moe": (True, "a dense MLP without the action expert (not a WALL-OSS flow checkpoint)"),
    "attention_moe": (False, "per-expert attention projections (the WALL-OSS-0.5 / wall-oss-flow-0.1 layout)"),
    "norm_moe": (False, "per-expert layer norms (the WALL-OSS-0.5 layout)"),
    "use_adarms": (False, "adaptive RMSNorm conditioned on the flow time"),
    "use_x_pred": (False, "the x-prediction flow objective (WALL-OSS-0.5)"),
    "use_sliding_window": (False, "sliding-window attention"),
    "causal_action_attention_mask": (False, "causal attention among the action tokens"),
    "mot_opt": (False, "the mixture-of-transformers token permutation"),
    "proj_with_mask": (True, "action and state projections without the DOF mask"),
    "use_state_string_representation": (False, "state written into the prompt as text (WALL-OSS-0.5)"),
    "use_flow_action_expert": (True, "no flow-matching action expert"),
}
# Widths of the action and state embeddings: this runtime computes them at the model width only.
WIDTH_FIELDS = ("action_hidden_size", "state_hidden_size")

VISION_COMPUTED = frozenset({
    "depth", "hidden_size", "intermediate_size", "num_heads", "out_hidden_size", "patch_size",
    "spatial_merge_size", "temporal_patch_size", "window_size", "fullatt_block_indexes", "in_channels",
    "tokens_per_second", "hidden_act",
})
VISION_INERT = frozenset({"model_type", "torch_dtype", "dtype", "initializer_range", "_name_or_path",
                          "transformers_version", "architectures"})
# Legacy Qwen2-VL spellings of computed fields: allowed when they agree with the field they alias.
VISION_ALIASES = {"in_chans": "in_channels", "spatial_patch_size": "patch_size", "embed_dim": "hidden_size"}


def pinned_value(raw: dict[str, Any], key: str) -> Any:
    return raw.get(key, PINNED[key][0])


def refused_fields(raw: dict[str, Any]) -> list[str]:
    """Every field of a flow-family config this runtime would not compute faithfully, with the reason."""
    problems: list[str] = []
    text = raw.get("text_config") or {}
    hidden = raw.get("hidden_size", text.get("hidden_size"))
    for where, mapping in (("", raw), ("text_config.", text)):
        for key, value in mapping.items():
            if key in COMPUTED or key in INERT:
                continue
            if key in WIDTH_FIELDS:
                if value is not None and value != hidden:
                    problems.append(f"{where}{key}={value!r} (an action expert narrower than the model, the "
                                    f"WALL-OSS-0.5 layout) is not implemented; this runtime computes {hidden}")
                continue
            if key in PINNED:
                expected, meaning = PINNED[key]
                if value != expected and not (value is None and expected is False):
                    problems.append(f"{where}{key}={value!r} ({meaning}) is not implemented; this runtime computes "
                                    f"{key}={expected!r}")
                continue
            problems.append(f"{where}{key} is an unknown field (the runtime would ignore it)")
    vision = raw.get("vision_config") or {}
    for key, value in vision.items():
        if key in VISION_COMPUTED or key in VISION_INERT:
            continue
        alias = VISION_ALIASES.get(key)
        if alias is not None:
            if alias in vision and vision[alias] != value:
                problems.append(f"vision_config.{key}={value!r} disagrees with vision_config.{alias}="
                                f"{vision[alias]!r}")
            continue
        problems.append(f"vision_config.{key} is an unknown field (the runtime would ignore it)")
    shift = (raw.get("noise_scheduler") or {}).get("time_shift", 1.0)
    if shift != 1.0:
        problems.append(f"noise_scheduler.time_shift={shift!r} (a shifted Euler time grid) is not implemented")
    layer_types = raw.get("layer_types") or text.get("layer_types")
    if layer_types and any(t != "full_attention" for t in layer_types):
        problems.append(f"layer_types {sorted(set(layer_types))}: only full_attention layers are implemented")
    return problems
