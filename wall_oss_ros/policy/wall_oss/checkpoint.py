"""Load WALL-OSS checkpoints: weights from safetensors (single file or sharded with an index), exact keys.

Pickle is never read. Upstream checkpoints keep their normaliser inside model.safetensors as
action_preprocessor.normalizer_{action,propri}.{min,delta}.<dataset>; those keys are statistics, not
parameters.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from wall_oss_ros.policy.wall_oss.normalization import SlotStats

NORMALIZER_KEY = re.compile(r"^action_preprocessor\.normalizer_(action|propri)\.(min|delta)\.(.+)$")


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model; the message names the keys or the file."""


def _load(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc


def read_state_dict(directory: Path) -> dict[str, torch.Tensor]:
    single, index = directory / "model.safetensors", directory / "model.safetensors.index.json"
    if single.is_file():
        return _load(single)
    if index.is_file():
        try:
            weight_map = dict(json.loads(index.read_text()).get("weight_map", {}))
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{index}: unreadable ({exc})") from exc
        state: dict[str, torch.Tensor] = {}
        for shard in sorted(set(weight_map.values())):
            part = _load(directory / str(shard))
            state.update({k: v for k, v in part.items() if weight_map.get(k) == shard})
        missing = sorted(set(weight_map) - set(state))
        if missing:
            raise CheckpointError(f"{index}: shards lack {missing[:5]}")
        return state
    raise CheckpointError(f"{directory}: no model.safetensors or model.safetensors.index.json")


def split_normalizer(state: dict[str, torch.Tensor]) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Remove the embedded normaliser keys; returns {dataset: {"action"|"propri": {"min"|"delta": array}}}."""
    found: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for key in [k for k in state if NORMALIZER_KEY.match(k)]:
        what, stat, dataset = NORMALIZER_KEY.match(key).groups()
        found.setdefault(dataset, {}).setdefault(what, {})[stat] = state.pop(key).float().numpy().reshape(-1)
    return found


def embedded_stats(found: dict[str, dict[str, dict[str, np.ndarray]]], dataset: str | None,
                   state_width: int, action_width: int, source: str) -> tuple[SlotStats, SlotStats] | None:
    if not found:
        return None
    if dataset is None:
        if len(found) > 1:
            raise CheckpointError(f"{source}: statistics of several datasets {sorted(found)}: choose one")
        dataset = next(iter(found))
    if dataset not in found:
        raise CheckpointError(f"{source}: no statistics for dataset {dataset!r} (have {sorted(found)})")
    stats = []
    for what, width in (("propri", state_width), ("action", action_width)):
        entry = found[dataset].get(what, {})
        if "min" not in entry or "delta" not in entry:
            raise CheckpointError(f"{source}: dataset {dataset!r} lacks normalizer_{what} min/delta")
        stats.append(SlotStats.padded("min_max", entry["min"], entry["delta"], width))
    return stats[0], stats[1]


EMBED_KEY, LM_HEAD_KEY = "model.embed_tokens.weight", "lm_head.weight"


def vocab_rows(state: dict[str, torch.Tensor], source: str) -> int:
    """Rows of the token embedding as stored: upstream and LeRobot resize it to the tokenizer's length,
    so config.json's vocab_size (151936 for wall-oss-flow) is not the size to build."""
    rows = {k: int(state[k].shape[0]) for k in (EMBED_KEY, LM_HEAD_KEY) if k in state}
    if not rows:
        raise CheckpointError(f"{source}: neither {EMBED_KEY} nor {LM_HEAD_KEY} is in the weights")
    if len(set(rows.values())) > 1:
        raise CheckpointError(f"{source}: {EMBED_KEY} and {LM_HEAD_KEY} have different row counts {rows}")
    return next(iter(rows.values()))


def untie(state: dict[str, torch.Tensor], tied: bool, source: str) -> None:
    """Tied embeddings are saved as either half: transformers keeps embed_tokens, LeRobot's
    save_torch_state_dict keeps lm_head. Bring them to the one key the model owns (embed_tokens)."""
    if not tied:
        return
    if EMBED_KEY in state and LM_HEAD_KEY in state:
        if not torch.equal(state[EMBED_KEY], state[LM_HEAD_KEY]):
            raise CheckpointError(f"{source}: tie_word_embeddings is true but {EMBED_KEY} and {LM_HEAD_KEY} differ")
        del state[LM_HEAD_KEY]
    elif LM_HEAD_KEY in state:
        state[EMBED_KEY] = state.pop(LM_HEAD_KEY)


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load with zero missing and zero unexpected keys; shapes must match. A tied lm_head may come as
    either half (see untie)."""
    tied = model.lm_head.weight is model.model.embed_tokens.weight
    untie(state, tied, source)
    own = {k: v for k, v in model.state_dict().items() if not (tied and k == LM_HEAD_KEY)}
    missing = sorted(k for k in own if k not in state)
    unexpected = sorted(k for k in state if k not in own)
    if missing or unexpected:
        raise CheckpointError(f"{source}: {len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected "
                              f"keys {unexpected[:5]}")
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise CheckpointError(f"{source}: {key} has shape {tuple(value.shape)}, the configuration expects "
                                  f"{tuple(own[key].shape)}")
    model.load_state_dict(state, strict=False)  # complete: the key sets were compared above
