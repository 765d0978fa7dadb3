"""Real-time chunking (RTC): guided inpainting of the steps the robot will execute while a chunk is computed.

Black, Galliker & Levine 2025 (ΠGDM guidance). With flow time τ from 0 (noise) to 1 (action), as in
WALL-OSS, each Euler step's velocity v is corrected by
    c(τ) · (∂Â¹/∂A^τ)ᵀ [W ⊙ (Y − Â¹)],   Â¹ = A^τ + (1 − τ)·v,
    c(τ) = min(β, (1 − τ) / (τ · r²)),   r² = (1 − τ)² / (τ² + (1 − τ)²)
where Y holds the committed actions and W weights them: 1 for the first d steps (they will run before
the chunk arrives), then a schedule decaying to 0 over the rest of the committed overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

SCHEDULES = ("exp", "linear", "ones", "zeros")


@dataclass(frozen=True)
class RtcConfig:
    max_guidance_weight: float = 10.0  # β (LeRobot's default; upstream wall-x uses 20)
    schedule: str = "exp"  # weights of committed steps after the delay: exp | linear | ones | zeros

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not self.max_guidance_weight >= 0:
            raise ValueError("max_guidance_weight must not be negative")


def prefix_weights(horizon: int, delay: int, committed: int, schedule: str) -> np.ndarray:
    """W per step (horizon,): 1 for i < delay, the schedule for delay ≤ i < committed, 0 after."""
    w = np.zeros(horizon)
    committed = min(committed, horizon)
    delay = min(delay, committed)
    w[:delay] = 1.0
    span = committed - delay
    if span > 0 and schedule != "zeros":
        i = np.arange(span)
        if schedule == "ones":
            w[delay:committed] = 1.0
        elif schedule == "linear":
            w[delay:committed] = 1.0 - (i + 1) / (span + 1)
        else:  # exp, as in the RTC paper
            c = (span - i) / (span + 1)
            w[delay:committed] = c * np.expm1(c) / math.expm1(1.0)
    return w


def guidance_weight(tau: float, max_weight: float) -> float:
    """c(τ) = min(β, (1 − τ) / (τ · r²)); β at τ = 0."""
    if tau <= 0.0:
        return max_weight
    r2 = (1 - tau) ** 2 / (tau ** 2 + (1 - tau) ** 2)
    return max_weight if r2 <= 0.0 else min(max_weight, (1 - tau) / (tau * r2))


@dataclass
class RtcGuide:
    """Target and weights in the model's normalised action space, (B, H, action_dim) each."""

    target: torch.Tensor
    weights: torch.Tensor
    max_guidance_weight: float

    def correct(self, x: torch.Tensor, tau: float, velocity_fn) -> torch.Tensor:  # noqa: ANN001
        """Velocity at (x, τ) with the ΠGDM correction; needs autograd through velocity_fn."""
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            v = velocity_fn(x_in)
            x1 = x_in + (1.0 - tau) * v
            error = (self.target - x1) * self.weights
            (grad,) = torch.autograd.grad(x1, x_in, grad_outputs=error)
        return v.detach() + guidance_weight(tau, self.max_guidance_weight) * grad
