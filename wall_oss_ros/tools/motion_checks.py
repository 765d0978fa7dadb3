"""A run's motion against the robot contract's limits, recomputed from its bag.

Three views, because each can be within limits while another is not: the commands as published (position
and velocity fields), the commands' own motion on their tick grid (velocity, acceleration and jerk from
the commanded positions), and what the robot did (/joint_states). Chunk-boundary jumps show how far each
new chunk disagrees with the one before where the executor switches over: the discontinuity the
executor's limiter has to absorb.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from wall_oss_ros.core.contract import GroupKind, Representation, RobotContract
from wall_oss_ros.tools.run_data import Chunk, Command, RunData

POSITION_GROUPS = (GroupKind.JOINT_POSITION, GroupKind.GRIPPER)
OVER_LIMIT = 1.05  # measured samples above this share of a limit are counted
COMMAND_SLACK = 1e-3  # commands are exact samples of a limited path: 0.1 % covers stamp rounding (1 ns)
DERIVATIVES = ("velocity", "acceleration", "jerk")


def limit_violations(data: RunData, contract: RobotContract) -> dict[str, int]:
    """Commands outside position limits, over the velocity limit, or not finite; non-finite measurements."""
    out = {"position": 0, "velocity": 0, "nonfinite_command": 0, "nonfinite_joint_state": 0, "nonfinite_chunk": 0}
    for g in contract.groups:
        if not g.joints or g.name not in data.commands:
            continue
        lo = np.array([x.position_min for x in g.joint_limits])
        hi = np.array([x.position_max for x in g.joint_limits])
        vmax = np.array([x.velocity_max for x in g.joint_limits])
        for c in data.commands[g.name]:
            p, v = c.positions, c.velocities
            if not (np.all(np.isfinite(p)) and np.all(np.isfinite(v))):
                out["nonfinite_command"] += 1
                continue
            out["position"] += int(np.any(p < lo - 1e-9) or np.any(p > hi + 1e-9))
            out["velocity"] += int(len(v) == len(vmax) and np.any(np.abs(v) > vmax * (1 + 1e-6)))
    out["nonfinite_joint_state"] = sum(int(not np.all(np.isfinite(q))) for q in data.joint_q)
    out["nonfinite_chunk"] = sum(int(not np.all(np.isfinite(c.values))) for c in data.chunks)
    return out


def swings(error: np.ndarray, band: float) -> int:
    """Sign changes of a tracking error from beyond -band to beyond +band or back (with hysteresis): a
    follower swinging around its target, not the small lag any follower of a periodic motion has, which
    changes sign at the motion's own rate."""
    count, side = 0, 0
    for e in np.asarray(error, dtype=float).tolist():
        new = 1 if e > band else -1 if e < -band else side
        if side and new != side:
            count += 1
        side = new
    return count


def derivatives(t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Velocity, acceleration and jerk of samples x (rows) at times t, as k! times the k-th divided
    difference: each equals the derivative somewhere inside its samples' span, so samples of a path within
    a limit give values within it, at any spacing (missed ticks included)."""
    d1 = np.diff(x, axis=0) / np.diff(t)[:, None]
    d2 = np.diff(d1, axis=0) / (t[2:] - t[:-2])[:, None]
    d3 = np.diff(d2, axis=0) / (t[3:] - t[:-3])[:, None]
    return d1, 2.0 * d2, 6.0 * d3


def _worst(out: dict, prefix: str, kind: str, share: np.ndarray, axes: tuple[str, ...], at: np.ndarray,
           over: float) -> None:
    """Fold one series of shares of a limit (samples x axes) into out's maximum, its place and its count."""
    if not share.size:
        return
    k, j = np.unravel_index(int(np.argmax(share)), share.shape)
    if share[k, j] > out[f"max_{prefix}_{kind}_of_limit"]:
        out[f"max_{prefix}_{kind}_of_limit"] = float(share[k, j])
        out[f"max_{prefix}_{kind}_at"] = f"{axes[j]} at {at[k]:.2f} s"
    out[f"{prefix}_{kind}_samples_over_limit"] += int(np.sum(share > over))


def _empty(prefix: str, kinds: tuple[str, ...]) -> dict[str, object]:
    out: dict[str, object] = {}
    for kind in kinds:
        out[f"max_{prefix}_{kind}_of_limit"] = 0.0
        out[f"{prefix}_{kind}_samples_over_limit"] = 0
    return out


def joint_motion(t: np.ndarray, q: np.ndarray, names: tuple[str, ...], contract: RobotContract) -> dict:
    """Measured arm joint velocities and accelerations (divided differences of consecutive joint states)
    against the contract's limits: the worst as a share of its limit, and the samples over 105 %."""
    index = {n: i for i, n in enumerate(names)}
    keep = np.concatenate([[True], np.diff(t) > 1e-6])  # a state received twice has no new stamp
    t, q = t[keep], q[keep]
    out = _empty("joint", DERIVATIVES[:2])
    if len(t) < 4:
        return out
    for g in contract.groups:
        axes = tuple(a for a in g.joints if a in index)
        if g.kind is GroupKind.GRIPPER or not axes:  # a gripper closing on an object stalls by design
            continue
        limits = [lim for a, lim in zip(g.joints, g.joint_limits, strict=True) if a in index]
        v, a, _ = derivatives(t, q[:, [index[x] for x in axes]])
        _worst(out, "joint", "velocity", np.abs(v) / [x.velocity_max for x in limits], axes, t[1:], OVER_LIMIT)
        _worst(out, "joint", "acceleration", np.abs(a) / [x.acceleration_max for x in limits], axes, t[1:-1],
               OVER_LIMIT)
    return out


def command_times(commands: list[Command]) -> np.ndarray:
    """Each command's time on the executor's tick grid: its stamp (horizon mode: the tick's time), or, with
    stamps of zero (stream mode: one message per tick), its index times the control period."""
    stamps = np.array([c.stamp for c in commands])
    if len(stamps) and np.all(stamps > 0):
        return stamps
    return np.arange(len(commands)) * (commands[0].period_s if commands else 0.0)


def command_motion(data: RunData, contract: RobotContract) -> dict:
    """The commanded positions' velocity, acceleration and jerk on the tick grid against the contract's
    limits, per position group: the worst as a share of its limit and the samples over it (any is a
    step the executor's limiter should have prevented: a reset, a jump, a missed tick not taken up)."""
    out = _empty("command", DERIVATIVES)
    for g in contract.groups:
        cmds = [c for c in data.commands.get(g.name, []) if np.all(np.isfinite(c.positions))]
        if not g.joints or len(cmds) < 4:
            continue
        t = command_times(cmds)
        order = np.concatenate([[True], np.diff(t) > 1e-9])  # a repeated standstill carries its tick's stamp
        t, p = t[order], np.array([c.positions for c in cmds])[order]
        for kind, x in zip(DERIVATIVES, derivatives(t, p), strict=True):
            bound = np.array([getattr(lim, f"{kind}_max") for lim in g.joint_limits])
            _worst(out, "command", kind, np.abs(x) / bound, g.joints, t[1:1 + len(x)], 1.0 + COMMAND_SLACK)
    return out


def _targets(chunk: Chunk, axes: list[str], relative: bool) -> np.ndarray | None:
    """The chunk's absolute targets of these action names (horizon x len(axes)); None when it lacks one."""
    if not all(a in chunk.names for a in axes) or (relative and not all(a in chunk.state for a in axes)):
        return None
    values = chunk.values[:, [chunk.names.index(a) for a in axes]]
    return values + np.array([chunk.state[a] for a in axes]) if relative else values


def _at(chunk: Chunk, targets: np.ndarray, t: float) -> np.ndarray | None:
    """Targets linearly interpolated at time t; None outside the chunk's steps."""
    steps = chunk.t_obs + chunk.dt_s * np.arange(len(targets))
    if not steps[0] <= t <= steps[-1]:
        return None
    return np.array([np.interp(t, steps, targets[:, j]) for j in range(targets.shape[1])])


def chunk_jumps(data: RunData, contract: RobotContract) -> dict:
    """Per position group: how far each chunk's targets lie from the previous chunk's at its arrival, where
    the executor switches over. Largest, 95th percentile, its axis and time, and the time it takes at the
    velocity limit. Chunks arriving after the previous one's last step are counted, not compared."""
    out: dict[str, object] = {"chunk_switches_after_the_previous_ended": 0}
    chunks = sorted(data.chunks, key=lambda c: c.arrival)
    ended = set()
    for g in contract.groups:
        if g.kind not in POSITION_GROUPS:
            continue
        names = list(g.action_names)
        relative = g.representation is Representation.RELATIVE
        vmax = np.array([lim.velocity_max for lim in g.limits])
        jumps, where = [], []
        for prev, new in pairwise(chunks):
            a, b = _targets(prev, names, relative), _targets(new, names, relative)
            if a is None or b is None:
                continue
            old_at, new_at = _at(prev, a, new.arrival), _at(new, b, new.arrival)
            if old_at is None or new_at is None:
                ended.add(new.arrival)
                continue
            jump = np.abs(new_at - old_at)
            j = int(np.argmax(jump / vmax))
            jumps.append(jump[j])
            where.append((g.axes[j], new.arrival, jump[j] / vmax[j]))
        if jumps:
            k = int(np.argmax([w[2] for w in where]))
            out[g.name] = {"max": float(jumps[k]), "p95": float(np.percentile(jumps, 95)), "unit": g.unit,
                           "at": f"{where[k][0]} at {where[k][1]:.2f} s", "max_at_velocity_limit_s": where[k][2],
                           "switches": len(jumps)}
    out["chunk_switches_after_the_previous_ended"] = len(ended)
    return out


def measured_motion(data: RunData, contract: RobotContract, control_hz: float = 100.0) -> dict:
    """What the robot did, not what was commanded: joint_motion of /joint_states, the gaps between commands as
    they arrived, and the executor's missed control deadlines. A starved executor whose every command is
    within limits can still make the robot lurch after a gap."""
    out: dict[str, object] = {}
    if len(data.joint_t) > 3:
        out.update(joint_motion(np.array(data.joint_t), np.array(data.joint_q), data.joint_names, contract))
    first = next((g.name for g in contract.groups if data.commands.get(g.name)), None)
    if first is not None and len(data.commands[first]) > 1:
        gaps = np.diff([c.t for c in data.commands[first]])
        out["command_gap_max_s"] = float(gaps.max())
        out["command_gaps_over_1_5_periods"] = int(np.sum(gaps > 1.5 / control_hz))
    if data.missed_deadlines is not None:
        out["missed_deadlines"] = data.missed_deadlines
    return out


def _share_rows(figures: dict, prefix: str, label: str, kinds: tuple[str, ...], over: str) -> list[str]:
    rows = []
    for kind in kinds:
        if f"max_{prefix}_{kind}_of_limit" in figures:
            share = 100 * figures[f"max_{prefix}_{kind}_of_limit"]
            rows.append(f"| {label} {kind}, max (of its limit) | {share:.0f} % "
                        f"({figures.get(f'max_{prefix}_{kind}_at', '–')}; "
                        f"{figures[f'{prefix}_{kind}_samples_over_limit']} samples over {over}) |")
    return rows


def motion_rows(commanded: dict, jumps: dict, measured: dict) -> list[str]:
    """Report rows: the commands on their tick grid, chunk-boundary jumps, what the robot did."""
    rows = _share_rows(commanded, "command", "commanded", DERIVATIVES, "100 %")
    for group, j in jumps.items():
        if isinstance(j, dict):
            rows.append(f"| chunk-boundary jump, {group}: max / p95 | {j['max']:.3f} / {j['p95']:.3f} {j['unit']} "
                        f"({j['at']}; {1e3 * j['max_at_velocity_limit_s']:.0f} ms at the velocity limit) |")
    if jumps.get("chunk_switches_after_the_previous_ended"):
        rows.append(f"| chunks that arrived after the previous one ended | "
                    f"{jumps['chunk_switches_after_the_previous_ended']} |")
    rows += _share_rows(measured, "joint", "measured arm joint", DERIVATIVES[:2], "105 %")
    if "command_gap_max_s" in measured:
        rows.append(f"| command gaps over 1.5 periods / longest | {measured['command_gaps_over_1_5_periods']} / "
                    f"{1e3 * measured['command_gap_max_s']:.0f} ms |")
    if "missed_deadlines" in measured:
        rows.append(f"| executor missed control deadlines | {measured['missed_deadlines']} |")
    return rows
