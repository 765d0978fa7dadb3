"""The executor's axes: where each group's action columns land on the limiter's axes, what kind each axis is
(position, EE rotation in a chart around the commanded orientation, velocity) and its bounds.

Built once from the contract, so that the per-tick code indexes arrays instead of walking groups.
"""

from __future__ import annotations

import numpy as np

from wall_oss_ros.core.contract import Group, GroupKind, OutputKind, RobotContract
from wall_oss_ros.core.executor_types import GroupCommand, MeasuredState
from wall_oss_ros.core.kinematics import ForwardKinematics, make_kinematics
from wall_oss_ros.core.rotations import matrix_to_rot6d, quat_to_matrix_one

MEASURED_SLACK = 1e-6  # a measured position this close outside a limit is sensor noise, not a fault
CHECK_SLACK = 1e-9  # a command this close outside a limit is rounding, not a limiter failure


class GroupAxes:
    """Where a group lives in the action vector (cols) and in the limiter's axes (axes)."""

    def __init__(self, group: Group, cols: slice, axes: slice) -> None:
        self.group, self.cols, self.axes = group, cols, axes
        self.pos, self.rot = slice(axes.start, axes.start + 3), slice(axes.start + 3, axes.stop)  # EE groups
        self.kind: GroupKind = group.kind
        self.ik = group.ik  # ee_pose on joint-space controllers: the axes are the arm's joints
        self.joint_names: tuple[str, ...] = group.joints
        self.fk: ForwardKinematics | None = make_kinematics(group.kinematics) if group.kinematics else None
        self.quat = np.array([0.0, 0.0, 0.0, 1.0])  # EE groups: commanded orientation (x, y, z, w)
        self.rotation: np.ndarray | None = np.eye(3)  # its matrix, derived lazily (see matrix())
        self.last_inside_target: np.ndarray | None = None  # workspace groups: last target whose tip was inside

    def matrix(self) -> np.ndarray:
        """Commanded orientation of an EE group as a matrix (computed once per change)."""
        if self.rotation is None:
            self.rotation = quat_to_matrix_one(self.quat)
        return self.rotation


def _index(runs: list[slice]) -> np.ndarray:
    """The positions the slices cover, in order, as one index array."""
    return np.concatenate([np.arange(r.start, r.stop) for r in runs]) if runs else np.zeros(0, dtype=int)


class AxisLayout:
    def __init__(self, contract: RobotContract, period_s: float, step_cap_factor: float) -> None:
        limits, velocity, continuous = [], [], []
        self.groups: list[GroupAxes] = []
        for g in contract.groups:
            start = len(limits)
            group_limits = g.ik.limits if g.ik is not None else g.limits
            limits += group_limits
            velocity += [g.kind is GroupKind.BASE_TWIST] * len(group_limits)
            continuous += list(g.continuous) if g.continuous else [False] * g.action_dim
            self.groups.append(GroupAxes(g, contract.action_slice(g), slice(start, len(limits))))
        self.limits = tuple(limits)
        self.n = n = len(limits)
        self.continuous = np.array(continuous, dtype=bool)  # per action column
        self.velocity_axes = np.array(velocity, dtype=bool)
        self.servo_axes = self._mask(ga for ga in self.groups if ga.ik is not None)
        self.rotation_axes = np.zeros(n, dtype=bool)
        for ga in self.groups:
            if ga.kind is GroupKind.EE_POSE and ga.ik is None:
                self.rotation_axes[ga.rot] = True
        self.position_axes = ~(self.velocity_axes | self.rotation_axes)
        self.jtc_axes = self._mask(ga for ga in self.groups if ga.group.output.kind is OutputKind.JTC)
        self.velocity_max = velocity_max = np.array([lim.velocity_max for lim in limits])
        self.two_acceleration = 2.0 * np.array([lim.acceleration_max for lim in limits])
        # Largest change of a position target per tick at full speed (inf: not a position axis).
        self.max_travel = np.where(self.position_axes, velocity_max * period_s, np.inf)
        # Target clamp bounds, unbounded (-inf, inf) for velocity and rotation axes and for arms through IK
        # (the solve keeps them inside; their targets are written after the clamp).
        self.safe_min = np.where(self.position_axes, [lim.safe_min for lim in limits], -np.inf)
        self.safe_max = np.where(self.position_axes, [lim.safe_max for lim in limits], np.inf)
        self.safe_min[self.servo_axes], self.safe_max[self.servo_axes] = -np.inf, np.inf
        # Joint and gripper axes take their action columns one to one: one index for all of them.
        direct = [ga for ga in self.groups if ga.kind in (GroupKind.JOINT_POSITION, GroupKind.GRIPPER)]
        self.direct_axes, self.direct_cols = _index([ga.axes for ga in direct]), _index([ga.cols for ga in direct])
        a = self.direct_axes
        if len(a) and np.array_equal(a, self.direct_cols) and np.array_equal(a, np.arange(a[0], a[-1] + 1)):
            self.direct_axes = self.direct_cols = slice(int(a[0]), int(a[-1]) + 1)
        self.other_groups = [ga for ga in self.groups if ga not in direct and ga.ik is None]
        self.fk_groups = [ga for ga in self.groups if ga.fk is not None]
        self.tracked_groups = [ga for ga in self.groups if ga.group.tracking_tolerance is not None]
        self.axis_joints: list[str | None] = [None] * n  # the joint each axis drives, where it is one
        for ga in self.groups:
            if len(ga.joint_names) == ga.axes.stop - ga.axes.start:
                self.axis_joints[ga.axes] = ga.joint_names
        self.max_step = np.array([lim.max_step if lim.max_step is not None else
                                  step_cap_factor * lim.velocity_max * period_s for lim in limits])
        too_small = [i for i, lim in enumerate(limits) if self.max_step[i] < lim.velocity_max * period_s]
        if too_small:
            raise ValueError(f"max_step of axis {too_small[0]} is below velocity_max / control_hz: "
                             "the step cap would fight the velocity limit")
        # Post-step checks, as arrays that are infinite where an axis has no such limit.
        self.step_cap = np.where(self.position_axes, self.max_step, np.inf)
        self.check_lo = np.where(self.position_axes, [lim.position_min - CHECK_SLACK for lim in limits], -np.inf)
        self.check_hi = np.where(self.position_axes, [lim.position_max + CHECK_SLACK for lim in limits], np.inf)

    def _mask(self, groups) -> np.ndarray:  # noqa: ANN001 - an iterable of GroupAxes
        mask = np.zeros(self.n, dtype=bool)
        for ga in groups:
            mask[ga.axes] = True
        return mask

    def retimed_columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The plan's position-like columns with their limits (cols, velocity_max, acceleration_max): joint and
        gripper positions with their axis limits, end-effector x, y, z with their Cartesian limits (the IK
        stage's for arms through IK)."""
        cols, vmax, amax = [], [], []
        for ga in self.groups:
            if ga.kind in (GroupKind.JOINT_POSITION, GroupKind.GRIPPER):
                limits = self.limits[ga.axes]
                cols += range(ga.cols.start, ga.cols.stop)
            elif ga.kind is GroupKind.EE_POSE:
                limits = ga.group.limits[:3] if ga.ik is not None else self.limits[ga.pos]
                cols += range(ga.cols.start, ga.cols.start + 3)
            else:
                continue
            vmax += [lim.velocity_max for lim in limits]
            amax += [lim.acceleration_max for lim in limits]
        return np.array(cols, dtype=int), np.array(vmax), np.array(amax)

    def velocity_columns(self) -> np.ndarray:
        return np.array([c for ga in self.groups if ga.kind is GroupKind.BASE_TWIST
                         for c in range(ga.cols.start, ga.cols.stop)], dtype=int)

    def take_measured(self, measured: MeasuredState) -> np.ndarray:
        """The command state a start takes from the robot: its positions, returned, and the EE groups'
        orientations, kept. ValueError (and nothing kept) for a missing, non-finite or out-of-limits
        measurement: a robot outside its limits is never commanded."""
        positions, orientations = np.zeros(self.n), {}
        for ga in self.groups:
            g = ga.group
            if ga.kind is GroupKind.EE_POSE and ga.ik is None:
                if g.name not in measured.poses:
                    raise ValueError(f"measured state lacks the pose of {g.name} ({g.state_topic})")
                xyz, quat = (np.asarray(x, dtype=float) for x in measured.poses[g.name])
                if not (np.all(np.isfinite(xyz)) and np.all(np.isfinite(quat)) and np.linalg.norm(quat) > 0.5):
                    raise ValueError(f"measured pose of {g.name} is not finite")
                positions[ga.pos] = xyz
                orientations[g.name] = quat / np.linalg.norm(quat)
            elif ga.kind is not GroupKind.BASE_TWIST:
                missing = [j for j in ga.joint_names if j not in measured.joints]
                if missing:
                    raise ValueError(f"measured state lacks joints {missing[:4]} of {g.name}")
                values = np.array([measured.joints[j] for j in ga.joint_names], dtype=float)
                if not np.all(np.isfinite(values)):
                    raise ValueError(f"measured state of {g.name} is not finite")
                positions[ga.axes] = values
        bad = self.position_axes & ((positions < self.check_lo - MEASURED_SLACK) |
                                    (positions > self.check_hi + MEASURED_SLACK))
        if np.any(bad):
            i = int(np.argmax(bad))
            raise ValueError(f"axis {i} measured at {positions[i]:.4f} is outside its limits "
                             f"[{self.limits[i].position_min}, {self.limits[i].position_max}]: move it inside first")
        for ga in self.groups:
            if ga.group.name in orientations:
                ga.quat = orientations[ga.group.name]
                ga.rotation = quat_to_matrix_one(ga.quat)
            ga.last_inside_target = None
        return positions

    def anchor(self, p: np.ndarray, v: np.ndarray, a: np.ndarray, value: np.ndarray, rate: np.ndarray,
               rate2: np.ndarray) -> None:
        """Write the command state (p, v, a) of every group not through IK as an action-space target."""
        for ga in self.groups:
            if ga.ik is not None:
                continue
            if ga.kind is GroupKind.EE_POSE:
                value[ga.cols] = np.concatenate([p[ga.pos], matrix_to_rot6d(ga.matrix())])
                rate[ga.cols][:3], rate2[ga.cols][:3] = v[ga.pos], a[ga.pos]
            elif ga.kind is GroupKind.BASE_TWIST:
                value[ga.cols], rate[ga.cols] = v[ga.axes], a[ga.axes]
            else:
                value[ga.cols], rate[ga.cols], rate2[ga.cols] = p[ga.axes], v[ga.axes], a[ga.axes]

    def commands(self, p: np.ndarray, v: np.ndarray, a: np.ndarray) -> list[GroupCommand]:
        """Each group's command from the axes' state: EE groups with their orientation and base-frame rates."""
        out = []
        for ga in self.groups:
            g, ax = ga.group, ga.axes
            if ga.ik is not None:
                out.append(GroupCommand(g.name, g.kind, ga.joint_names, p[ax], v[ax], a[ax]))
            elif ga.kind is GroupKind.EE_POSE:
                rotation = ga.matrix()
                out.append(GroupCommand(g.name, g.kind, g.axes, np.array(p[ga.pos].tolist() + ga.quat.tolist()),
                                        np.concatenate([v[ga.pos], rotation @ v[ga.rot]]),
                                        np.concatenate([a[ga.pos], rotation @ a[ga.rot]])))
            elif ga.kind is GroupKind.BASE_TWIST:
                out.append(GroupCommand(g.name, g.kind, g.axes, np.zeros(0), v[ax], a[ax]))
            else:
                out.append(GroupCommand(g.name, g.kind, g.axes, p[ax], v[ax], a[ax]))
        return out
