"""The three checkpoint layouts WALL-OSS weights come in, resolved to one description the loader uses.

transformers  config.json (Qwen2.5-VL flat config + WALL-OSS fields), model.safetensors (+ index),
              tokenizer / processor files — the x-square-robot/wall-oss-flow layout. Statistics, if any,
              are the upstream normaliser keys inside model.safetensors.
lerobot       a LeRobot `wall_x` policy directory: config.json with "type": "wall_x" whose
              pretrained_name_or_path names the base (transformers layout) directory; model.safetensors
              with the policy's "model." prefix; policy_preprocessor*_normalizer_processor.safetensors
              with MEAN_STD statistics of the dataset's (unpadded) state and action.
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
from safetensors.torch import load_file

from wall_oss_ros.policy.wall_oss import layout_upstream
from wall_oss_ros.policy.wall_oss.checkpoint import CheckpointError, read_state_dict
from wall_oss_ros.policy.wall_oss.configuration_wall_oss import ConfigError
from wall_oss_ros.policy.wall_oss.layout_files import padded, resolve_path
from wall_oss_ros.policy.wall_oss.normalization import SlotStats

LAYOUTS = ("transformers", "lerobot", "upstream")
LEROBOT_PREDICTION_MODES = {"diffusion": "flow", "fast": "fast"}  # LeRobot's names → ours


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


def _lerobot_stats(directory: Path, state_width: int, action_width: int) -> tuple[SlotStats, SlotStats] | None:
    files = sorted(directory.glob("policy_preprocessor*normalizer_processor.safetensors"))
    if not files:
        return None
    flat = load_file(str(files[0]))
    try:
        state_mean, state_std = flat["observation.state.mean"], flat["observation.state.std"]
        action_mean, action_std = flat["action.mean"], flat["action.std"]
    except KeyError as exc:
        raise CheckpointError(f"{files[0]}: lacks {exc.args[0]}") from exc
    as_np = [t.float().numpy().reshape(-1) for t in (state_mean, state_std, action_mean, action_std)]
    return (SlotStats("mean_std", padded(as_np[0], state_width, 0.0), padded(as_np[1], state_width, 1.0)),
            SlotStats("mean_std", padded(as_np[2], action_width, 0.0), padded(as_np[3], action_width, 1.0)))


def resolve(directory: Path, state_width: int, action_width: int, dataset: str | None = None) -> ResolvedCheckpoint:
    """The checkpoint's layout, config, weights and statistics; any malformed file is a CheckpointError."""
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
        policy = json.loads((directory / "config.json").read_text())
        base = resolve_path(directory, str(policy.get("pretrained_name_or_path", "")), "pretrained_name_or_path")
        config = json.loads((base / "config.json").read_text())
        state = {k.removeprefix("model."): v for k, v in read_state_dict(directory).items()}
        mode = LEROBOT_PREDICTION_MODES.get(policy.get("prediction_mode", "diffusion"))
        if mode is None:
            raise CheckpointError(f"{directory / 'config.json'}: prediction_mode {policy['prediction_mode']!r} is "
                                  f"not one of {sorted(LEROBOT_PREDICTION_MODES)}")
        return ResolvedCheckpoint(layout, config, base, state, policy.get("chunk_size"),
                                  _lerobot_stats(directory, state_width, action_width), dataset, mode)
    train = yaml.safe_load((directory / "config.yml").read_text()) or {}
    if not isinstance(train, dict):
        raise CheckpointError(f"{directory / 'config.yml'}: expected a mapping")
    config, processor, horizon, stats, dataset = layout_upstream.read(directory, train, state_width, action_width,
                                                                      dataset)
    return ResolvedCheckpoint(layout, config, processor, read_state_dict(directory), horizon, stats, dataset)
