"""The seam between the ROS nodes and a policy: what a backend takes and what it returns.

Value types only (numpy): the executor side imports them without torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from wall_oss_ros.core.contract import RobotContract


@dataclass(frozen=True)
class Observation:
    images: Mapping[str, np.ndarray]  # camera name (contract) → H×W×3 uint8 RGB
    state: np.ndarray  # the contract's proprioceptive values in robot units, model-slot order
    instruction: str
    stamp_ns: int | None = None  # t_obs; with it the noise is drawn from (seed, t_obs): same observation, same chunk


@dataclass(frozen=True)
class RtcRequest:
    """Real-time chunking: the executor's committed actions, which will run while this chunk is computed."""

    committed: np.ndarray  # (K, D) robot units, contract action order, step k at the new chunk's step k
    delay_steps: int  # inference delay d in steps: the first d steps are fixed to the committed ones


@dataclass(frozen=True)
class ChunkResult:
    actions: np.ndarray  # (H, D) robot units, contract action order
    action_names: tuple[str, ...]
    dt_s: float
    state_names: tuple[str, ...]  # the observed state the chunk was computed from (relative actions)
    state: np.ndarray
    inference_start_s: float  # wall clock (time.time()) when inference started
    inference_end_s: float
    denoising_steps: int
    rtc_prefix_steps: int = 0
    subtask: str = ""


class PolicyBackend(Protocol):
    contract: RobotContract
    horizon: int
    dt_s: float

    def warmup(self) -> None:
        """Run the model once so the first real inference is not slowed by lazy initialisation."""
        ...

    def infer(self, observation: Observation, rtc: RtcRequest | None = None) -> ChunkResult:
        """One chunk; at most one runs at a time (callers from several threads are serialised)."""
        ...
