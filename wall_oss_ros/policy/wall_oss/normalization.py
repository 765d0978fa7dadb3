"""Normalisation of proprioception and actions, with the statistics a checkpoint carries.

Two schemes exist: LeRobot's MEAN_STD (x_n = (x - mean) / std) and upstream wall-x's min/delta map to
[-1, 1] (x_n = 2 (x - min) / delta - 1, clamped when normalising inputs). Model outputs are mapped back
without clamping: the executor's limits, not the statistics, bound what the robot does. Statistics are
per model slot (max_state_dim / max_action_dim wide); slots without statistics pass through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 1e-8


@dataclass(frozen=True)
class SlotStats:
    """Per-slot statistics: (mean, std) for "mean_std", (min, delta) for "min_max"."""

    kind: str
    a: np.ndarray
    b: np.ndarray

    def __post_init__(self) -> None:
        if self.kind not in ("mean_std", "min_max"):
            raise ValueError(f"unknown normalisation {self.kind!r}")
        if self.a.shape != self.b.shape or self.a.ndim != 1:
            raise ValueError(f"statistics shapes differ: {self.a.shape} vs {self.b.shape}")
        if not (np.all(np.isfinite(self.a)) and np.all(np.isfinite(self.b))):
            raise ValueError("normalisation statistics are not finite")

    def normalize(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "mean_std":
            return (x - self.a) / (self.b + EPS)  # LeRobot's NormalizerProcessorStep
        return np.clip(2.0 * (x - self.a) / np.maximum(self.b, EPS) - 1.0, -1.0, 1.0)

    def unnormalize(self, y: np.ndarray) -> np.ndarray:
        if self.kind == "mean_std":
            return y * self.b + self.a
        return (y + 1.0) / 2.0 * self.b + self.a

    @classmethod
    def identity(cls, width: int) -> SlotStats:
        return cls("mean_std", np.zeros(width), np.ones(width))

    @classmethod
    def padded(cls, kind: str, a: np.ndarray, b: np.ndarray, width: int) -> SlotStats:
        """Statistics of a dataset's leading dimensions spread over the model's `width` slots; the slots beyond
        them pass through unchanged (mean 0 / std 1, or min −1 / delta 2)."""
        identity_a, identity_b = (0.0, 1.0) if kind == "mean_std" else (-1.0, 2.0)
        out_a, out_b = np.full(width, identity_a), np.full(width, identity_b)
        a, b = np.asarray(a, dtype=float).reshape(-1), np.asarray(b, dtype=float).reshape(-1)
        n = min(width, len(a), len(b))
        out_a[:n], out_b[:n] = a[:n], b[:n]
        return cls(kind, out_a, out_b)


@dataclass(frozen=True)
class Normalizer:
    state: SlotStats  # max_state_dim wide
    action: SlotStats  # max_action_dim wide
