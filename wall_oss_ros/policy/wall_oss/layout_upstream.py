"""wall-x training directories: the flat config.yml of the 2025 releases and wall-x 1.1.0's nested one.

flat    qwen_vl_act_config_path, processor_path, dof_config, agent_pos_config, dataset_name,
        data.action_horizon_flow; statistics in normalizer_{action,propri}.pth ({min,delta}.<dataset>)
1.1.0   task.{dof_config, agent_pos_config, action_horizon_flow, use_state_string_representation,
        noise_scheduler}, model.{config_path, processor_path}, data.{norm_stats_path,
        lerobot_config.repo_id}; the checkpoint holds config.json (a copy of model.config_path), the
        tokenizer files and norm_stats.json {"norm_stats": {"observation.state"|"action": {q01, q99, …}}},
        which map to min = q01, delta = q99 − q01 (normalised inputs clipped to [-1, 1]).
The .pth files are read with torch.load(weights_only=True): tensors only, never unpickled objects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wall_oss_ros.policy.wall_oss.checkpoint import CheckpointError
from wall_oss_ros.policy.wall_oss.layout_files import resolve_path
from wall_oss_ros.policy.wall_oss.normalization import SlotStats

NORM_STATS_KEYS = {"propri": "observation.state", "action": "action"}
# task: fields of 1.1.0 that belong to the model's math; they are checked with config.json's fields.
TASK_MODEL_FIELDS = ("use_state_string_representation", "noise_scheduler")


def normalizer_pth(path: Path, dataset: str) -> tuple[np.ndarray, np.ndarray]:
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


def norm_stats_json(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"propri"|"action": (min, delta)} from wall-x 1.1.0's q01/q99 statistics."""
    content = json.loads(path.read_text())
    stats = content.get("norm_stats") if isinstance(content, dict) else None
    if not isinstance(stats, dict):
        raise CheckpointError(f"{path}: expected {{\"norm_stats\": {{...}}}}")
    out = {}
    for what, key in NORM_STATS_KEYS.items():
        entry = stats.get(key)
        if not isinstance(entry, dict) or "q01" not in entry or "q99" not in entry:
            raise CheckpointError(f"{path}: norm_stats.{key} lacks q01/q99")
        q01, q99 = (np.asarray(entry[k], dtype=float).reshape(-1) for k in ("q01", "q99"))
        if q01.shape != q99.shape:
            raise CheckpointError(f"{path}: norm_stats.{key} q01 and q99 differ in length")
        out[what] = (q01, q99 - q01)
    return out


def min_max_stats(found: dict[str, tuple[np.ndarray, np.ndarray]], state_width: int,
             action_width: int) -> tuple[SlotStats, SlotStats]:
    (p_min, p_delta), (a_min, a_delta) = found["propri"], found["action"]
    return (SlotStats.padded("min_max", p_min, p_delta, state_width),
            SlotStats.padded("min_max", a_min, a_delta, action_width))


def _section(train: dict[str, Any], name: str, source: Path) -> dict[str, Any]:
    value = train.get(name) or {}
    if not isinstance(value, dict):
        raise CheckpointError(f"{source}: {name} must be a mapping")
    return value


Stats = tuple[SlotStats, SlotStats]


def read(directory: Path, train: dict[str, Any], state_width: int, action_width: int,
         dataset: str | None) -> tuple[dict[str, Any], Path, int | None, Stats | None, str | None]:
    """(model config, processor directory, horizon, statistics, dataset) of a wall-x directory."""
    source = directory / "config.yml"
    nested = isinstance(train.get("task"), dict) or isinstance(train.get("model"), dict)
    if nested:
        task, model, data = (_section(train, k, source) for k in ("task", "model", "data"))
        for key in ("dof_config", "agent_pos_config"):
            if key not in task:
                raise CheckpointError(f"{source}: task.{key} is missing")
        own = directory / "config.json"
        config_file = own if own.is_file() else resolve_path(directory, str(model.get("config_path", "")),
                                                               "model.config_path")
        has_tokenizer = (directory / "tokenizer_config.json").is_file() or (directory / "tokenizer.json").is_file()
        processor = directory if has_tokenizer else resolve_path(directory, str(model.get("processor_path", "")),
                                                                 "model.processor_path")
        horizon = task.get("action_horizon_flow")
        dataset = dataset or (data.get("lerobot_config") or {}).get("repo_id")
        extra = {k: task[k] for k in TASK_MODEL_FIELDS if k in task}
        config = {**json.loads(config_file.read_text()), **extra,
                  "dof_config": task["dof_config"], "agent_pos_config": task["agent_pos_config"]}
        stats_file = directory / "norm_stats.json"
        if not stats_file.is_file() and data.get("norm_stats_path"):
            stats_file = resolve_path(directory, str(data["norm_stats_path"]), "data.norm_stats_path")
        if stats_file.is_file():
            return config, processor, horizon, min_max_stats(norm_stats_json(stats_file), state_width,
                                                        action_width), dataset
    else:
        for key in ("qwen_vl_act_config_path", "processor_path", "dof_config", "agent_pos_config"):
            if key not in train:
                raise CheckpointError(f"{source}: {key} is missing")
        config_file = resolve_path(directory, train["qwen_vl_act_config_path"], "qwen_vl_act_config_path")
        config = {**json.loads(config_file.read_text()), "dof_config": train["dof_config"],
                  "agent_pos_config": train["agent_pos_config"]}
        processor = resolve_path(directory, train["processor_path"], "processor_path")
        horizon = (train.get("data") or {}).get("action_horizon_flow")
        dataset = dataset or train.get("dataset_name")
    action_file, propri_file = directory / "normalizer_action.pth", directory / "normalizer_propri.pth"
    stats = None
    if action_file.is_file() and propri_file.is_file():
        if dataset is None:
            raise CheckpointError(f"{directory}: give the dataset whose statistics to use (dataset_name)")
        found = {"action": normalizer_pth(action_file, dataset), "propri": normalizer_pth(propri_file, dataset)}
        stats = min_max_stats(found, state_width, action_width)
    return config, processor, horizon, stats, dataset
