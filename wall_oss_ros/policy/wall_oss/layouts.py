"""The three checkpoint layouts WALL-OSS weights come in, resolved to one description the loader uses.

transformers  config.json (Qwen2.5-VL flat config + WALL-OSS fields), model.safetensors (+ index),
              tokenizer / processor files — the x-square-robot/wall-oss-flow layout. Statistics, if any,
              are the upstream normaliser keys inside model.safetensors.
lerobot       a LeRobot `wall_x` policy directory: config.json with "type": "wall_x" whose
              pretrained_name_or_path names the base (transformers layout) directory; model.safetensors
              with the policy's "model." prefix; policy_preprocessor*_normalizer_processor.safetensors
              with MEAN_STD statistics of the dataset's (unpadded) state and action.
upstream      a wall-x training directory: config.yml (dof_config, agent_pos_config,
              qwen_vl_act_config_path, processor_path, data.action_horizon_flow, dataset_name),
              model.safetensors, normalizer_action.pth / normalizer_propri.pth (tensors only: read with
              torch.load(weights_only=True), never unpickled as objects).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file

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


def _resolve(directory: Path, reference: str, what: str) -> Path:
    path = Path(reference)
    path = path if path.is_absolute() else directory / path
    if not path.exists():
        raise CheckpointError(f"{directory}: {what} {reference!r} not found (resolved to {path})")
    return path


def _padded(values: np.ndarray, width: int, fill: float) -> np.ndarray:
    out = np.full(width, fill, dtype=float)
    n = min(width, len(values))
    out[:n] = values[:n]
    return out


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
    return (SlotStats("mean_std", _padded(as_np[0], state_width, 0.0), _padded(as_np[1], state_width, 1.0)),
            SlotStats("mean_std", _padded(as_np[2], action_width, 0.0), _padded(as_np[3], action_width, 1.0)))


def _upstream_normalizer(path: Path, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickled objects are refused by weights_only: say what to do
        raise CheckpointError(f"{path}: not a tensor-only file ({exc.__class__.__name__}); convert it to a "
                              "state dict of tensors ({'min.<dataset>': ..., 'delta.<dataset>': ...})") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors")
    key_min, key_delta = f"min.{dataset}", f"delta.{dataset}"
    if key_min not in state or key_delta not in state:
        datasets = sorted({k.split(".", 1)[1] for k in state if "." in k})
        raise CheckpointError(f"{path}: no statistics for dataset {dataset!r} (have {datasets})")
    return state[key_min].float().numpy().reshape(-1), state[key_delta].float().numpy().reshape(-1)


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
        base = _resolve(directory, str(policy.get("pretrained_name_or_path", "")), "pretrained_name_or_path")
        config = json.loads((base / "config.json").read_text())
        state = {k.removeprefix("model."): v for k, v in read_state_dict(directory).items()}
        return ResolvedCheckpoint(layout, config, base, state, policy.get("chunk_size"),
                                  _lerobot_stats(directory, state_width, action_width), dataset)
    train = yaml.safe_load((directory / "config.yml").read_text()) or {}
    for key in ("qwen_vl_act_config_path", "processor_path", "dof_config", "agent_pos_config"):
        if key not in train:
            raise CheckpointError(f"{directory / 'config.yml'}: {key} is missing")
    config = json.loads(_resolve(directory, train["qwen_vl_act_config_path"], "qwen_vl_act_config_path").read_text())
    config = {**config, "dof_config": train["dof_config"], "agent_pos_config": train["agent_pos_config"]}
    dataset = dataset or train.get("dataset_name")
    stats = None
    action_file, propri_file = directory / "normalizer_action.pth", directory / "normalizer_propri.pth"
    if action_file.is_file() and propri_file.is_file():
        if dataset is None:
            raise CheckpointError(f"{directory}: give the dataset whose statistics to use (dataset_name)")
        (a_min, a_delta), (p_min, p_delta) = (_upstream_normalizer(f, dataset) for f in (action_file, propri_file))
        stats = (SlotStats("min_max", _padded(p_min, state_width, -1.0), _padded(p_delta, state_width, 2.0)),
                 SlotStats("min_max", _padded(a_min, action_width, -1.0), _padded(a_delta, action_width, 2.0)))
    horizon = (train.get("data") or {}).get("action_horizon_flow")
    return ResolvedCheckpoint(layout, config, _resolve(directory, train["processor_path"], "processor_path"),
                              read_state_dict(directory), horizon, stats, dataset)
