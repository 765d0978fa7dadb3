"""The two layouts WALL-OSS-0.5 is published in, resolved to one description the loader uses.

x-square  x-square-robot/wall-oss-0.5: config.json is the author's model config; model.safetensors holds
          the weights and the training normalisers (action_preprocessor.normalizer_{action,propri}.{min,
          delta}.<dataset>); q01/q99 statistics in norm_stats.json when wall-x wrote one (its serving
          prefers that file), else normalizer_{propri,action}.pth (tensors only, weights_only), else the
          embedded min/delta of the chosen dataset.
lerobot   lerobot/wall-oss-0.5: config.json is a LeRobot policy ("type": "wall_oss_05") with the author
          config as vlm_config; the same model.safetensors (normaliser keys kept, unused); QUANTILES
          statistics (observation.state.q01/q99, action.q01/q99) in the pre/post-processors' state files.
Either way the normaliser tensors are statistics, not parameters: they are split off and counted. A
policy LeRobot saved itself (after fine-tuning) holds no normaliser tensors and its vision MLP fused
(`visual.blocks.N.mlp.gate_up_proj`, gate rows then up rows): it is split back into the stored form.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from wall_oss_ros.policy.family import OSS_05, require_family
from wall_oss_ros.policy.wall_oss.checkpoint import CheckpointError, embedded_stats, read_state_dict, split_normalizer
from wall_oss_ros.policy.wall_oss.configuration_wall_oss import ConfigError
from wall_oss_ros.policy.wall_oss.layout_lerobot import step_file
from wall_oss_ros.policy.wall_oss.layout_upstream import min_max_stats, norm_stats_json, normalizer_pth
from wall_oss_ros.policy.wall_oss.normalization import SlotStats
from wall_oss_ros.policy.wall_oss_05.configuration_wall_oss_05 import ACTION_DIM, STATE_DIM

LAYOUTS = ("x-square", "lerobot")
EXPECTED_NORMALIZATION = {"VISUAL": "IDENTITY", "STATE": "QUANTILES", "ACTION": "QUANTILES"}


@dataclass
class Resolved05:
    layout: str
    config: dict[str, Any]  # the author model config
    processor_dir: Path
    state: dict[str, torch.Tensor]  # weights as the model names them, normaliser keys removed
    normalizer_tensors: int  # how many normaliser tensors were split off
    stats: tuple[SlotStats, SlotStats] | None  # (state, action), 26 slots each, q01 / q99 as min / delta
    dataset: str | None
    horizon: int | None
    trained_cameras: list[str] | None  # LeRobot camera_key_mapping values, in prompt order


FUSED_VISION_MLP = re.compile(r"^(visual\.blocks\.\d+\.mlp\.)gate_up_proj\.(weight|bias)$")


def unfuse_vision_mlp(state: dict[str, torch.Tensor]) -> int:
    """gate_up_proj → gate_proj + up_proj (halves of the rows), in place; returns how many were split."""
    fused = [k for k in state if FUSED_VISION_MLP.match(k)]
    for key in fused:
        prefix, kind = FUSED_VISION_MLP.match(key).groups()
        value = state.pop(key)
        if value.shape[0] % 2:
            raise CheckpointError(f"{key}: {value.shape[0]} rows cannot be gate and up halves")
        state[f"{prefix}gate_proj.{kind}"], state[f"{prefix}up_proj.{kind}"] = (
            part.contiguous() for part in value.chunk(2, dim=0))
    return len(fused)


def _quantiles(q01: object, q99: object, width: int) -> SlotStats:
    lo, hi = np.asarray(q01, dtype=float).reshape(-1), np.asarray(q99, dtype=float).reshape(-1)
    return SlotStats.padded("min_max", lo, hi - lo, width)


def _step_quantiles(path: Path, key: str, width: int) -> SlotStats:
    flat = load_file(str(path))
    try:
        return _quantiles(flat[f"{key}.q01"].numpy(), flat[f"{key}.q99"].numpy(), width)
    except KeyError as exc:
        raise CheckpointError(f"{path}: lacks {exc.args[0]} (QUANTILES statistics)") from exc


def _lerobot(directory: Path, policy: dict[str, Any]) -> tuple[dict[str, Any], tuple[SlotStats, SlotStats] | None]:
    source = directory / "config.json"
    problems = []
    if not isinstance(policy.get("vlm_config"), dict):
        problems.append("vlm_config (the author model config) is missing")
    for key, want in (("max_action_dim", ACTION_DIM), ("max_state_dim", STATE_DIM), ("n_obs_steps", 1),
                      ("num_inference_timesteps", 10)):
        if policy.get(key, want) != want:
            problems.append(f"{key}={policy[key]!r}: WALL-OSS-0.5 runs {key}={want}")
    if policy.get("action_branch", "flow") != "flow":
        problems.append(f"action_branch={policy['action_branch']!r}: only the flow branch is published")
    mapping = policy.get("normalization_mapping", EXPECTED_NORMALIZATION)
    if mapping != EXPECTED_NORMALIZATION:
        problems.append(f"normalization_mapping={mapping!r}: only {EXPECTED_NORMALIZATION} is implemented")
    if problems:
        raise CheckpointError(f"{source}: " + "; ".join(problems))
    stats = None
    pre = step_file(directory, "policy_preprocessor", "normalizer_processor")
    if pre is not None:
        post = step_file(directory, "policy_postprocessor", "unnormalizer_processor") or pre
        stats = (_step_quantiles(pre, "observation.state", STATE_DIM), _step_quantiles(post, "action", ACTION_DIM))
    return policy["vlm_config"], stats


def resolve(directory: Path, dataset: str | None = None) -> Resolved05:
    """Layout, config, weights and statistics; a malformed file is a CheckpointError, a checkpoint of the
    other family a FamilyError (before any weight is read)."""
    require_family(directory, OSS_05)
    try:
        return _resolve(directory, dataset)
    except (CheckpointError, ConfigError):
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, SafetensorError, AttributeError, TypeError,
            KeyError, ValueError) as exc:
        raise CheckpointError(f"{directory}: malformed checkpoint ({type(exc).__name__}: {exc})") from exc


def _resolve(directory: Path, dataset: str | None) -> Resolved05:
    source = directory / "config.json"
    if not source.is_file():
        raise CheckpointError(f"{directory}: not a WALL-OSS-0.5 checkpoint (no config.json)")
    content = json.loads(source.read_text())
    if not isinstance(content, dict):
        raise CheckpointError(f"{source}: expected a JSON object")
    state = read_state_dict(directory)
    unfuse_vision_mlp(state)
    found = split_normalizer(state)
    count = sum(len(stats) for per in found.values() for stats in per.values())
    if content.get("type") == "wall_oss_05":
        config, stats = _lerobot(directory, content)
        mapping = content.get("camera_key_mapping")
        cameras = list(mapping.values()) if isinstance(mapping, dict) else None
        return Resolved05("lerobot", config, directory, state, count, stats, dataset, content.get("chunk_size"),
                          cameras)
    return Resolved05("x-square", content, directory, state, count, _author_stats(directory, found, dataset),
                      dataset, None, None)


def _author_stats(directory: Path, found: dict, dataset: str | None) -> tuple[SlotStats, SlotStats] | None:
    """As wall-x serving reads them: norm_stats.json, else normalizer_{propri,action}.pth (tensors only), else
    the normalisers inside model.safetensors."""
    if (directory / "norm_stats.json").is_file():
        return min_max_stats(norm_stats_json(directory / "norm_stats.json"), STATE_DIM, ACTION_DIM)
    files = {what: directory / f"normalizer_{what}.pth" for what in ("propri", "action")}
    if all(f.is_file() for f in files.values()):
        if dataset is None and len(found) != 1:
            raise CheckpointError(f"{directory}: normalizer_*.pth without a dataset: choose one")
        chosen = dataset or next(iter(found))
        return min_max_stats({what: normalizer_pth(f, chosen) for what, f in files.items()}, STATE_DIM, ACTION_DIM)
    return embedded_stats(found, dataset, STATE_DIM, ACTION_DIM, str(directory))
