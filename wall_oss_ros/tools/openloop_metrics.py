"""Open-loop metrics: predicted chunks against what the robot did next, as plain arrays (no ROS, no model)."""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EvaluatedChunk:
    t_obs: float  # [s]
    predicted: np.ndarray  # (H, D) absolute targets, robot units
    truth: np.ndarray  # (H, D) what the robot did at t_obs + k·dt (NaN where the recording has no data)


def ground_truth(times: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """values (T, D) recorded at times (T,) → (len(query), D), each dimension interpolated linearly over its
    own recorded rows (NaN elsewhere: per-group command topics fill different rows); NaN outside its record."""
    out = np.full((len(query), values.shape[1]), np.nan)
    for d in range(values.shape[1]):
        known = np.isfinite(values[:, d])
        t, v = times[known], values[known, d]
        if len(t) < 2:
            continue
        inside = (query >= t[0]) & (query <= t[-1])
        out[inside, d] = np.interp(query[inside], t, v)
    return out


def _jerk(series: np.ndarray, dt: float) -> np.ndarray:
    """Mean |third difference| / dt³ per dimension of (H, D) series (NaN rows dropped)."""
    third = np.abs(np.diff(series, n=3, axis=0))
    out = np.full(series.shape[1], np.nan)
    known = np.isfinite(third).any(axis=0)
    out[known] = np.nanmean(third[:, known], axis=0) / dt**3
    return out


def compute_metrics(chunks: list[EvaluatedChunk], names: tuple[str, ...], dt_s: float) -> dict:
    """Per-dimension MAE / RMSE, error by horizon step, jerk of prediction vs recording, and the jump
    between consecutive chunks where the newer one takes over (its t_obs)."""
    if not chunks:
        raise ValueError("no chunk to evaluate")
    pred = np.stack([c.predicted for c in chunks])  # (N, H, D)
    truth = np.stack([c.truth for c in chunks])
    err = np.abs(pred - truth)
    valid = np.isfinite(err)
    with warnings.catch_warnings():  # dimensions without a record give all-NaN slices: reported as None
        warnings.simplefilter("ignore", RuntimeWarning)
        mae = np.nanmean(np.where(valid, err, np.nan), axis=(0, 1))
        rmse = np.sqrt(np.nanmean(np.where(valid, err**2, np.nan), axis=(0, 1)))
        by_step = np.nanmean(np.where(valid, err, np.nan), axis=(0, 2))
        jerk_pred = np.nanmean(np.stack([_jerk(c.predicted, dt_s) for c in chunks]), axis=0)
        jerk_true = np.nanmean(np.stack([_jerk(c.truth, dt_s) for c in chunks]), axis=0)
    jumps = []
    for old, new in itertools.pairwise(chunks):
        k = (new.t_obs - old.t_obs) / dt_s  # where the new chunk's first step falls in the old chunk
        if 0 <= k <= len(old.predicted) - 1:
            lo = int(np.floor(k))
            hi = min(lo + 1, len(old.predicted) - 1)
            old_at = old.predicted[lo] + (k - lo) * (old.predicted[hi] - old.predicted[lo])
            jumps.append(np.abs(new.predicted[0] - old_at))
    jumps_arr = np.array(jumps) if jumps else np.full((0, len(names)), np.nan)

    def per_dim(a: np.ndarray) -> dict[str, float | None]:
        return {n: (None if not np.isfinite(v) else float(v)) for n, v in zip(names, a, strict=True)}

    return {
        "chunks": len(chunks), "dt_s": dt_s, "horizon": int(pred.shape[1]),
        "mae": per_dim(mae), "rmse": per_dim(rmse),
        "mae_mean": float(np.nanmean(mae)) if np.isfinite(mae).any() else None,
        "error_by_step": [None if not np.isfinite(v) else float(v) for v in by_step],
        "jerk_predicted": per_dim(jerk_pred), "jerk_recorded": per_dim(jerk_true),
        "boundary_jump_mean": per_dim(jumps_arr.mean(axis=0)) if len(jumps) else per_dim(np.full(len(names), np.nan)),
        "boundary_jump_max": per_dim(jumps_arr.max(axis=0)) if len(jumps) else per_dim(np.full(len(names), np.nan)),
        "dims_without_ground_truth": [n for n, v in zip(names, valid.any(axis=(0, 1)), strict=True) if not v],
    }
