"""A `wall_x` policy directory as LeRobot's save_pretrained writes it.

config.json        the policy config ("type": "wall_x", chunk_size, max_action_dim, prediction_mode,
                   normalization_mapping, input/output features, pretrained_name_or_path = the base)
model.safetensors  the policy's weights under "model.", saved by huggingface_hub.save_torch_state_dict:
                   bf16 except the norms and the action head, and of the tied pair only lm_head.weight
policy_preprocessor.json + its normalizer_processor step's state_file: MEAN_STD statistics
                   (observation.state.{mean,std}, action.{mean,std}) of the dataset's unpadded dims;
policy_postprocessor.json + its unnormalizer_processor step's state_file: the action statistics used
                   to unnormalise. LeRobot normalises (x − mean) / (std + eps).
The base is resolved relative to the policy directory (LeRobot resolves a relative path against the
working directory of the process, which makes a saved policy depend on where it is started).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from wall_oss_ros.core.contract import view_name
from wall_oss_ros.policy.wall_oss.checkpoint import CheckpointError, read_state_dict
from wall_oss_ros.policy.wall_oss.layout_files import resolve_path
from wall_oss_ros.policy.wall_oss.normalization import SlotStats

PREDICTION_MODES = {"diffusion": "flow", "fast": "fast"}  # LeRobot's names → ours
# Policy-config fields that do not change what one inference computes (training, hub, runtime placement).
INERT = frozenset({
    "type", "device", "use_amp", "push_to_hub", "repo_id", "private", "tags", "license", "pretrained_path",
    "pretrained_revision", "n_action_steps",  # how many steps LeRobot's queue executes: the executor's job here
    "attn_implementation", "vision_attn_implementation",  # kernels; the action-token mask is explicit here
    "action_tokenizer_path",  # FAST files are given to the backend (fast_tokenizer)
    "optimizer_lr", "optimizer_betas", "optimizer_eps", "optimizer_weight_decay", "optimizer_grad_clip_norm",
    "scheduler_warmup_steps", "scheduler_decay_steps", "scheduler_decay_lr", "use_fast_tokenizer",
})
COMPUTED = frozenset({"chunk_size", "max_action_dim", "max_state_dim", "prediction_mode", "normalization_mapping",
                      "input_features", "output_features", "pretrained_name_or_path", "n_obs_steps", "use_peft"})
EXPECTED_NORMALIZATION = {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}


def _check_policy_config(policy: dict[str, Any], source: Path) -> list[str]:
    problems = [f"{key} is an unknown field (the runtime would ignore it)" for key in policy
                if key not in INERT and key not in COMPUTED]
    if policy.get("n_obs_steps", 1) != 1:
        problems.append(f"n_obs_steps={policy['n_obs_steps']!r}: only one observation step is implemented")
    if policy.get("use_peft"):
        problems.append("use_peft=true: the weights are PEFT adapters; merge them into the model first")
    mapping = policy.get("normalization_mapping", EXPECTED_NORMALIZATION)
    if mapping != EXPECTED_NORMALIZATION:
        problems.append(f"normalization_mapping={mapping!r}: only {EXPECTED_NORMALIZATION} is implemented")
    if policy.get("prediction_mode", "diffusion") not in PREDICTION_MODES:
        problems.append(f"prediction_mode={policy['prediction_mode']!r} is not one of {sorted(PREDICTION_MODES)}")
    return [f"{source}: {p}" for p in problems]


def step_file(directory: Path, pipeline: str, registry_name: str) -> Path | None:
    """The state file of a processor step, as the pipeline JSON names it."""
    spec = directory / f"{pipeline}.json"
    if not spec.is_file():
        matches = sorted(directory.glob(f"{pipeline}*{registry_name}.safetensors"))
        return matches[0] if matches else None
    steps = json.loads(spec.read_text()).get("steps", [])
    for step in steps:
        if step.get("registry_name") == registry_name and step.get("state_file"):
            return resolve_path(directory, str(step["state_file"]), f"{spec.name} state_file")
    return None


def _mean_std(path: Path, key: str, width: int) -> SlotStats:
    flat = load_file(str(path))
    try:
        mean, std = flat[f"{key}.mean"], flat[f"{key}.std"]
    except KeyError as exc:
        raise CheckpointError(f"{path}: lacks {exc.args[0]}") from exc
    return SlotStats.padded("mean_std", mean.float().numpy(), std.float().numpy(), width)


def camera_views(policy: dict[str, Any]) -> list[str]:
    """The prompt view names the policy was trained with, in LeRobot's order (its image features)."""
    features = policy.get("input_features") or {}
    return [view_name(k) for k, v in features.items() if isinstance(v, dict) and v.get("type") == "VISUAL"]


def read(directory: Path, state_width: int, action_width: int) -> tuple[
        dict[str, Any], dict[str, Any], Path, dict[str, torch.Tensor], tuple[SlotStats, SlotStats] | None]:
    """(policy config, base model config, base directory, weights without the prefix, statistics)."""
    source = directory / "config.json"
    policy = json.loads(source.read_text())
    problems = _check_policy_config(policy, source)
    if problems:
        raise CheckpointError("; ".join(problems))
    base = resolve_path(directory, str(policy.get("pretrained_name_or_path", "")), "pretrained_name_or_path")
    config = json.loads((base / "config.json").read_text())
    state = {k.removeprefix("model."): v for k, v in read_state_dict(directory).items()}
    stats = None
    pre = step_file(directory, "policy_preprocessor", "normalizer_processor")
    if pre is not None:
        post = step_file(directory, "policy_postprocessor", "unnormalizer_processor") or pre
        stats = (_mean_std(pre, "observation.state", state_width), _mean_std(post, "action", action_width))
    return policy, config, base, state, stats
