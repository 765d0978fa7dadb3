"""The three checkpoint layouts WALL-OSS weights come in, resolved to one description the loader uses.

transformers  config.json (Qwen2.5-VL flat config + WALL-OSS fields), model.safetensors (+ index),
              tokenizer / processor files — the x-square-robot/wall-oss-flow layout. Statistics, if any,
              are the upstream normaliser keys inside model.safetensors.
lerobot       a LeRobot `wall_x` policy directory as save_pretrained writes it, over its base (transformers
              layout); see layout_lerobot.
upstream      a wall-x training directory: config.yml (flat, or wall-x 1.1.0's nested task:/model:/data:),
              model.safetensors, statistics in norm_stats.json (q01/q99) or normalizer_*.pth (tensors
              only); see layout_upstream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError

from wall_oss_ros.policy.family import FLOW, require_family
from wall_oss_ros.policy.wall_oss import layout_lerobot, layout_upstream
from wall_oss_ros.policy.wall_oss.checkpoint import CheckpointError, read_state_dict
from wall_oss_ros.policy.wall_oss.configuration_wall_oss import ConfigError
from wall_oss_ros.policy.wall_oss.normalization import SlotStats

LAYOUTS = ("transformers", "lerobot", "upstream")


@dataclass
class ResolvedCheckpoint:
    layout: str
    config: dict[str, Any]  # the model's config.json content (flat or nested), with WALL-OSS fields
    processor_dir: Path
    state: dict[str, torch.Tensor]  # weights, keys as the model names them (may still hold normaliser keys)
    horizon: int | None
    stats: tuple[SlotStats, SlotStats] | None  # (state, action), when the layout carries them separately
    dataset: str | None
    prediction_mode: str | None = None  # flow | fast, when the layout records it (a LeRobot policy)
    trained_views: list[str] | None = None  # prompt view names the policy was fine-tuned with (LeRobot)
    trained_state_dims: int | None = None  # the dataset's state / action widths (LeRobot), slots 0..n-1
    trained_action_dims: int | None = None


def _feature_width(policy: dict[str, Any], section: str, key: str) -> int | None:
    shape = ((policy.get(section) or {}).get(key) or {}).get("shape")
    return int(shape[0]) if shape else None


def detect(directory: Path) -> str:
    if (directory / "config.yml").is_file():
        return "upstream"
    config = directory / "config.json"
    if config.is_file():
        try:
            content = json.loads(config.read_text())
            kind = content.get("type") if isinstance(content, dict) else None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{config}: unreadable ({exc})") from exc
        return "lerobot" if kind == "wall_x" else "transformers"
    raise CheckpointError(f"{directory}: not a WALL-OSS checkpoint (no config.json or config.yml)")


def resolve(directory: Path, state_width: int, action_width: int, dataset: str | None = None) -> ResolvedCheckpoint:
    """The checkpoint's layout, config, weights and statistics; any malformed file is a CheckpointError, a
    checkpoint of another model family a FamilyError (before any weight is read)."""
    require_family(directory, FLOW)
    try:
        return _resolve_layout(directory, state_width, action_width, dataset)
    except (CheckpointError, ConfigError):
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError, SafetensorError, AttributeError,
            TypeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{directory}: malformed checkpoint ({type(exc).__name__}: {exc})") from exc


def _resolve_layout(directory: Path, state_width: int, action_width: int, dataset: str | None) -> ResolvedCheckpoint:
    layout = detect(directory)
    if layout == "transformers":
        config = json.loads((directory / "config.json").read_text())
        return ResolvedCheckpoint(layout, config, directory, read_state_dict(directory),
                                  config.get("action_horizon"), None, dataset)
    if layout == "lerobot":
        policy, config, base, state, stats = layout_lerobot.read(directory, state_width, action_width)
        return ResolvedCheckpoint(layout, config, base, state, policy.get("chunk_size"), stats, dataset,
                                  layout_lerobot.PREDICTION_MODES[policy.get("prediction_mode", "diffusion")],
                                  layout_lerobot.camera_views(policy) or None, _feature_width(policy, "input_features",
                                                                                             "observation.state"),
                                  _feature_width(policy, "output_features", "action"))
    train = yaml.safe_load((directory / "config.yml").read_text()) or {}
    if not isinstance(train, dict):
        raise CheckpointError(f"{directory / 'config.yml'}: expected a mapping")
    config, processor, horizon, stats, dataset = layout_upstream.read(directory, train, state_width, action_width,
                                                                      dataset)
    return ResolvedCheckpoint(layout, config, processor, read_state_dict(directory), horizon, stats, dataset)
