"""Action chunks entering the executor: the value type, validation with reasons, absolute targets."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from wall_oss_ros.core.contract import GroupKind, Representation, RobotContract
from wall_oss_ros.core.rotations import compose_relative, matrix_to_rot6d, rot6d_to_matrix


@dataclass(frozen=True)
class Chunk:
    """A chunk of actions in robot units: step i targets t_obs + i·dt_s."""

    chunk_id: int
    t_obs: float  # [s] stamp of the newest camera frame of the observation
    dt_s: float  # [s] duration of one step
    names: tuple[str, ...]  # one per column of values
    values: np.ndarray  # (H, D)
    state_names: tuple[str, ...] = ()
    state: np.ndarray = field(default_factory=lambda: np.zeros(0))  # observed state at t_obs (relative actions)
    rtc_prefix_steps: int = 0

    @property
    def horizon(self) -> int:
        return int(self.values.shape[0]) if self.values.ndim == 2 else 0

    def step_times(self) -> np.ndarray:
        return self.t_obs + self.dt_s * np.arange(self.horizon)


class ChunkRejectedError(ValueError):
    """A chunk the executor will not use; `kind` is the intervention it counts as."""

    def __init__(self, kind: str, reason: str) -> None:
        self.kind = kind
        super().__init__(reason)


@dataclass(frozen=True)
class IntakeLimits:
    """Acceptance window of chunk stamps relative to the executor clock."""

    max_chunk_age_s: float = 1.0  # t_obs older than this at arrival: stale
    max_future_s: float = 0.05  # t_obs later than now by more: clock offset between hosts
    dt_tolerance: float = 0.01  # relative difference allowed between chunk dt and contract dt
    max_abs_value: float = 1e6  # larger magnitudes are no robot command in any unit: the policy is broken


def contract_columns(chunk: Chunk, contract: RobotContract) -> np.ndarray:
    """Column index in the chunk of each contract action name; rejects missing or extra names."""
    index = {name: i for i, name in enumerate(chunk.names)}
    if len(index) != len(chunk.names):
        raise ChunkRejectedError("rejected_chunk", "chunk action names are not unique")
    missing = [n for n in contract.action_names if n not in index]
    extra = sorted(set(chunk.names) - set(contract.action_names))
    if missing or extra:
        raise ChunkRejectedError("rejected_chunk", f"chunk {chunk.chunk_id} action names do not match the contract "
                            f"{contract.name}: missing {missing[:4]}, unknown {extra[:4]}")
    return np.array([index[n] for n in contract.action_names], dtype=int)


def check_chunk(chunk: Chunk, contract: RobotContract, now: float, last_t_obs: float | None,
                last_chunk_id: int | None, limits: IntakeLimits) -> np.ndarray:
    """Validate a chunk; returns its values in contract column order or raises ChunkRejectedError."""

    def reject(reason: str, kind: str = "rejected_chunk") -> ChunkRejectedError:
        return ChunkRejectedError(kind, f"chunk {chunk.chunk_id} {reason}")

    values = np.asarray(chunk.values, dtype=float)
    if values.ndim != 2 or values.shape[0] < 1 or values.shape[1] != len(chunk.names):
        raise reject(f"values have shape {values.shape}, expected (H >= 1, {len(chunk.names)})")
    columns = contract_columns(chunk, contract)
    if not np.all(np.isfinite(values)):
        bad = sorted({chunk.names[j] for j in np.argwhere(~np.isfinite(values))[:, 1]})
        raise reject(f"has non-finite values in {bad[:4]}", "nonfinite")
    if np.any(np.abs(values) > limits.max_abs_value):
        bad = sorted({chunk.names[j] for j in np.argwhere(np.abs(values) > limits.max_abs_value)[:, 1]})
        raise reject(f"has implausible values (|x| > {limits.max_abs_value:g}) in {bad[:4]}", "nonfinite")
    if not (math.isfinite(chunk.dt_s) and chunk.dt_s > 0):
        raise reject(f"step duration {chunk.dt_s} s is invalid")
    if abs(chunk.dt_s - contract.dt_s) > limits.dt_tolerance * contract.dt_s:
        raise reject(f"step duration {chunk.dt_s:.4f} s differs from the contract's {contract.dt_s:.4f} s")
    if not math.isfinite(chunk.t_obs):
        raise reject("has a non-finite stamp")
    if chunk.t_obs > now + limits.max_future_s:
        raise reject(f"is stamped {chunk.t_obs - now:.3f} s in the future: clocks of policy and robot hosts disagree")
    if now - chunk.t_obs > limits.max_chunk_age_s:
        raise reject(f"is stale: observation {now - chunk.t_obs:.3f} s old (max {limits.max_chunk_age_s} s)")
    if last_t_obs is not None and (chunk.t_obs < last_t_obs or
                                   (chunk.t_obs == last_t_obs and chunk.chunk_id == last_chunk_id)):
        raise reject(f"is out of order or duplicated: observation {chunk.t_obs:.3f} s is not newer than the "
                     f"last used ({last_t_obs:.3f} s)")
    return values[:, columns]


def observed_state(chunk: Chunk, contract: RobotContract) -> dict[str, np.ndarray]:
    """Per relative group, its observed state at t_obs, in action layout, from the chunk's state."""
    index = {n: i for i, n in enumerate(chunk.state_names)}
    state = np.asarray(chunk.state, dtype=float)
    out = {}
    for g in contract.groups:
        if g.representation is not Representation.RELATIVE:
            continue
        names = g.action_names
        missing = [n for n in names if n not in index]
        if missing:
            raise ChunkRejectedError("rejected_chunk", f"chunk {chunk.chunk_id} is relative for {g.name} but "
                                     f"carries no observed state for {missing[:3]}")
        values = state[[index[n] for n in names]]
        if not np.all(np.isfinite(values)):
            raise ChunkRejectedError("nonfinite", f"chunk {chunk.chunk_id} observed state of {g.name} is not finite")
        out[g.name] = values
    return out


def absolute_targets(values: np.ndarray, chunk: Chunk, contract: RobotContract) -> np.ndarray:
    """Contract-ordered chunk values → absolute targets (relative groups composed onto the observed state).

    EE rotations are returned re-orthonormalised in the 6-D layout, so later blending stays well-posed.
    """
    out = np.array(values, dtype=float, copy=True)
    observed = observed_state(chunk, contract)
    for g in contract.groups:
        cols = contract.action_slice(g)
        if g.kind is GroupKind.EE_POSE:
            block = out[:, cols]
            try:
                rot = rot6d_to_matrix(block[:, 3:9])
                if g.name in observed:
                    obs = observed[g.name]
                    block[:, 0:3] += obs[0:3]
                    rot = compose_relative(rot6d_to_matrix(obs[3:9]), rot, g.rotation_frame)
            except ValueError as exc:
                raise ChunkRejectedError("rejected_chunk", f"chunk {chunk.chunk_id} group {g.name}: {exc}") from exc
            block[:, 3:9] = matrix_to_rot6d(rot)
            out[:, cols] = block
        elif g.name in observed:
            out[:, cols] += observed[g.name]
    return out


def relative_values(absolute: np.ndarray, state: np.ndarray, state_names: tuple[str, ...],
                    contract: RobotContract) -> np.ndarray:
    """Inverse of absolute_targets: absolute contract-ordered actions → the chunk's representation.

    Used to express committed (absolute) plan steps the way a policy outputs them, relative to the state
    of the observation it is computing from.
    """
    out = np.array(absolute, dtype=float, copy=True)
    observed = observed_state(Chunk(0, 0.0, contract.dt_s, contract.action_names, out, state_names,
                                    np.asarray(state, dtype=float)), contract)
    for g in contract.groups:
        if g.name not in observed:
            continue
        cols, obs = contract.action_slice(g), observed[g.name]
        if g.kind is GroupKind.EE_POSE:
            block = out[:, cols]
            block[:, 0:3] -= obs[0:3]
            absolute_rot, obs_rot = rot6d_to_matrix(block[:, 3:9]), rot6d_to_matrix(obs[3:9])
            delta = (absolute_rot @ obs_rot.T) if g.rotation_frame == "base" else (obs_rot.T @ absolute_rot)
            block[:, 3:9] = matrix_to_rot6d(delta)
            out[:, cols] = block
        else:
            out[:, cols] -= obs
    return out
