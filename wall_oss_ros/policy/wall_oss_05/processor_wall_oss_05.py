"""WALL-OSS-0.5's observation encoding where it differs from the flow family: the state as prompt text, and
images scaled to a long side of 448 before Qwen's image processor.

State → text, as the model was trained: each state slot normalised with the dataset's 1st/99th percentiles
to [-1, 1] and clipped, digitised into 512 equal bins over [-1, 1] (bin k starts at -1 + k/256; -1 is bin
0, 0 is bin 256, 1 and above fall in bin 511), the bin numbers joined by single spaces in slot order, in
place of <|propri|> (policy/prompts.py). Which slots are written is the caller's mask: the robot's active
slots (wall-x) or all of them (LeRobot's port writes every slot of the padded 26).
"""

from __future__ import annotations

import numpy as np

from wall_oss_ros.policy.prompts import prompt

STATE_BINS = 512
BIN_EDGES = np.linspace(-1.0, 1.0, STATE_BINS + 1)[:-1]  # left edges
QUANTILE_EPS = 1e-8  # the span used where q99 == q01 (a constant slot)
IMAGE_LONG_SIDE = 448  # [px] before Qwen's smart_resize


def normalize_quantiles(state: np.ndarray, q01: np.ndarray, q99: np.ndarray) -> np.ndarray:
    """2 (x - q01) / (q99 - q01) - 1, clipped to [-1, 1]."""
    span = np.where(q99 == q01, QUANTILE_EPS, q99 - q01)
    return np.clip(2.0 * (np.asarray(state, float) - q01) / span - 1.0, -1.0, 1.0)


def state_bins(normalized: np.ndarray) -> np.ndarray:
    """Bin numbers 0…511 of normalised state values (outside [-1, 1]: the end bins, as after clipping)."""
    values = np.asarray(normalized, float)
    if not np.all(np.isfinite(values)):
        bad = np.flatnonzero(~np.isfinite(values)).tolist()
        raise ValueError(f"state slots {bad} are not finite: no bin to write")
    return np.digitize(np.clip(values, -1.0, 1.0), BIN_EDGES) - 1


def state_text(bins: np.ndarray, active: np.ndarray | None = None) -> str:
    """The bin numbers of the active slots (all when no mask), space-separated."""
    chosen = np.asarray(bins) if active is None else np.asarray(bins)[np.asarray(active, bool)]
    return " ".join(str(int(b)) for b in chosen)


def flow_prompt(views: list[str], instruction: str, horizon: int, state: str) -> str:
    """The 0.5 flow prompt: the flow family's turns with the state text where <|propri|> stands."""
    return prompt(views, instruction, horizon, proprioception=state)


def long_side_size(width: int, height: int, target: int = IMAGE_LONG_SIDE) -> tuple[int, int]:
    """(width, height) with the long side at `target`, the other scaled and truncated to whole pixels."""
    if width > height:
        return target, int(target * height / width)
    return int(target * width / height), target
