"""Drive a core Executor and check what it commands against the contract's limits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from wall_oss_ros.core.contract import GroupKind
from wall_oss_ros.core.executor import Executor
from wall_oss_ros.core.executor_types import GroupCommand, MeasuredState

REL_TOL = 1e-6  # relative slack on dynamic limits (floating point of the trajectory samples)


@dataclass
class Recording:
    """Commands of consecutive ticks (one control period apart), split where the command stream restarts."""

    segments: list[list[list[GroupCommand]]] = field(default_factory=list)
    none_ticks: int = 0

    def add(self, commands: list[GroupCommand] | None, restart: bool = False) -> None:
        if commands is None:
            self.none_ticks += 1
            self.segments.append([])
            return
        if restart or not self.segments:
            self.segments.append([])
        self.segments[-1].append(commands)


def measured_from_commands(ex: Executor, stamp: float, base: MeasuredState) -> MeasuredState:
    """A robot that tracks perfectly: measured = last command."""
    joints, poses = dict(base.joints), dict(base.poses)
    for cmd in ex._commands():
        if cmd.kind in (GroupKind.JOINT_POSITION, GroupKind.GRIPPER) or ex.contract.group(cmd.group).ik:
            joints.update(zip(cmd.names, cmd.positions.tolist(), strict=True))
        elif cmd.kind is GroupKind.EE_POSE:
            poses[cmd.group] = (cmd.positions[:3], cmd.positions[3:])
    return MeasuredState(stamp, joints, poses)


def axis_arrays(ex: Executor, commands: list[GroupCommand]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(position, velocity, acceleration) per control axis, in the executor's axis order."""
    p, v, a = [], [], []
    for cmd in commands:
        if cmd.kind is GroupKind.EE_POSE and not ex.contract.group(cmd.group).ik:
            p += list(cmd.positions[:3]) + [0.0] * 3
            rot_t = Rotation.from_quat(cmd.positions[3:]).as_matrix().T  # angular values in the tool frame
            v += list(cmd.velocities[:3]) + list(rot_t @ cmd.velocities[3:])
            a += list(cmd.accelerations[:3]) + list(rot_t @ cmd.accelerations[3:])
        elif cmd.kind is GroupKind.BASE_TWIST:
            p += [0.0] * len(cmd.velocities)
            v += list(cmd.velocities)
            a += list(cmd.accelerations)
        else:
            p += list(cmd.positions)
            v += list(cmd.velocities)
            a += list(cmd.accelerations)
    return np.array(p), np.array(v), np.array(a)


def check_limits(ex: Executor, rec: Recording) -> int:
    """Assert every command is finite, inside position bounds and within v/a/j limits. Returns ticks checked."""
    lim, period = ex.limiter, ex.period_s
    vmax, amax, jmax = lim.velocity_max, lim.acceleration_max, lim.jerk_max
    lo = np.array([x.position_min for x in ex.limits])
    hi = np.array([x.position_max for x in ex.limits])
    pos = ex.layout.position_axes
    checked = 0
    for segment in rec.segments:
        if not segment:
            continue
        arrays = [axis_arrays(ex, cmds) for cmds in segment]
        pos_arr = np.array([x[0] for x in arrays])
        vel_arr = np.array([x[1] for x in arrays])
        acc_arr = np.array([x[2] for x in arrays])
        for cmds in segment:
            for cmd in cmds:
                for arr in (cmd.positions, cmd.velocities, cmd.accelerations):
                    assert np.all(np.isfinite(arr)), f"non-finite command for {cmd.group}: {arr}"
        inside = (pos_arr[:, pos] >= lo[pos] - 1e-9) & (pos_arr[:, pos] <= hi[pos] + 1e-9)
        assert np.all(inside), "position limit left"
        assert np.all(np.abs(vel_arr) <= vmax * (1 + REL_TOL) + 1e-9), "reported velocity over limit"
        assert np.all(np.abs(acc_arr) <= amax * (1 + REL_TOL) + 1e-9), "reported acceleration over limit"
        # Finite differences of the command stream (what a controller sees), one period apart:
        # positions of position axes up to jerk; base twists up to jerk.
        twist = ex.layout.velocity_axes
        for series, cols, bounds in ((pos_arr, pos, (vmax, amax, jmax)), (vel_arr, twist, (amax, jmax))):
            d = series[:, cols]
            for order, bound in enumerate(bounds, start=1):
                d = np.diff(d, axis=0) / period
                if len(d) == 0:
                    break
                excess = np.abs(d) - bound[cols] * (1 + REL_TOL) - 1e-7
                assert np.all(excess <= 0), f"derivative {order} of the command stream over its limit by {excess.max()}"
        checked += len(segment)
    return checked


def assert_ramps(velocities: np.ndarray, stamps: np.ndarray, acc_max: float, period_s: float = 0.01) -> None:
    """No step of the commanded velocity larger than full acceleration over the time between the commands
    (their header stamps; at least a period, for unstamped stream commands): every halt is a ramp. A starved
    executor's next horizon path starts several periods later on the same path, so it may change more."""
    v, t = np.asarray(velocities, dtype=float), np.asarray(stamps, dtype=float)
    assert len(v) > 2, "too few commands to judge"
    dv = np.abs(np.diff(v, axis=0)).max(axis=1)
    allowed = acc_max * np.maximum(np.diff(t), period_s) * 1.01 + 1e-6
    worst = int(np.argmax(dv - allowed))
    assert dv[worst] <= allowed[worst], f"velocity step {dv[worst]:.4f} over {allowed[worst]:.4f} at command {worst}"


def assert_path_within(path: np.ndarray, bounds: tuple[np.ndarray, ...], period_s: float) -> None:
    """Finite differences of a path sampled every period_s within the bounds, in order (velocity, then
    acceleration, then jerk limits), each with a relative tolerance of 1e-6."""
    d = np.asarray(path, dtype=float)
    for bound in bounds:
        d = np.diff(d, axis=0) / period_s
        assert np.all(np.abs(d) <= bound * (1 + 1e-6) + 1e-7), f"a difference of {np.abs(d).max():.6g} over {bound}"
