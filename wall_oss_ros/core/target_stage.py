"""The executor's target stage: a plan sample (action space) → per-axis targets inside the position, gripper
range, workspace and base velocity limits.

It acts on the target, before jerk limiting, so that a limit never makes the command jump: the motion stage
then approaches the clamped target within the axis dynamics. The same stage serves the tick and the preview
of the path sent to the controllers, so every point of that path respects the same limits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from wall_oss_ros.core.contract import GroupKind
from wall_oss_ros.core.executor_axes import AxisLayout
from wall_oss_ros.core.rotations import tool_step_to
from wall_oss_ros.core.safety.status import Intervention

CLAMP_INTERVENTION = {GroupKind.GRIPPER: Intervention.GRIPPER_RANGE, GroupKind.EE_POSE: Intervention.WORKSPACE_LIMIT}


class TargetStage:
    def __init__(self, layout: AxisLayout, lower: np.ndarray, upper: np.ndarray) -> None:
        """lower, upper: the motion limiter's position bounds (infinite where an axis has none)."""
        self.layout, self.lower, self.upper = layout, lower, upper

    def __call__(self, value: np.ndarray, rate: np.ndarray, rate2: np.ndarray, target_p: np.ndarray,
                 target_v: np.ndarray, target_a: np.ndarray, current_p: np.ndarray,
                 note: Callable[[Intervention], None] | None) -> None:
        """Write the targets for the plan sample (value, rate, rate of change) into target_p, _v, _a.

        current_p: the command the step starts from; note: records an intervention, None in a preview (which
        records nothing and leaves the workspace memory alone).
        """
        lay = self.layout
        target_p[lay.direct_axes] = value[lay.direct_cols]
        target_v[lay.direct_axes] = rate[lay.direct_cols]
        target_a[lay.direct_axes] = rate2[lay.direct_cols]
        for ga in lay.other_groups:
            v, r = value[ga.cols], rate[ga.cols]
            if ga.kind is GroupKind.BASE_TWIST:
                vmax = lay.velocity_max[ga.axes]
                clipped = np.minimum(np.maximum(v, -vmax), vmax)
                if (clipped != v).any() and note is not None:
                    note(Intervention.BASE_LIMIT)
                target_v[ga.axes] = clipped
                target_a[ga.axes] = np.where(clipped == v, r, 0.0)
            elif ga.kind is GroupKind.EE_POSE:
                target_p[ga.pos], target_v[ga.pos], target_a[ga.pos] = v[:3], r[:3], rate2[ga.cols][:3]
                target_p[ga.rot] = tool_step_to(ga.quat, v[3:9])
        clamped = (target_p < lay.safe_min) | (target_p > lay.safe_max)
        if clamped.any():
            np.minimum(np.maximum(target_p, lay.safe_min, out=target_p), lay.safe_max, out=target_p)
            target_v[clamped] = 0.0
            target_a[clamped] = 0.0
            if note is not None:
                for ga in lay.groups:
                    if clamped[ga.axes].any():
                        note(CLAMP_INTERVENTION.get(ga.kind, Intervention.POSITION_LIMIT))
        for ga in lay.fk_groups:
            goal = target_p[ga.axes]
            x, y, z = ga.fk.position(goal).tolist()
            (x0, y0, z0), (x1, y1, z1) = ga.group.workspace.min_m, ga.group.workspace.max_m
            if x0 <= x <= x1 and y0 <= y <= y1 and z0 <= z <= z1:
                if note is not None:
                    ga.last_inside_target = goal.copy()
            else:
                fallback = ga.last_inside_target
                target_p[ga.axes] = fallback if fallback is not None else current_p[ga.axes]
                target_v[ga.axes] = 0.0
                target_a[ga.axes] = 0.0
                if note is not None:
                    note(Intervention.WORKSPACE_LIMIT)
        # A velocity the axis could not stop from before its bound would only make the limiter brake.
        room = np.where(target_v > 0, self.upper - target_p, target_p - self.lower)  # inf for unbounded axes
        vcap = np.sqrt(lay.two_acceleration * np.maximum(room, 0.0))
        capped = np.abs(target_v) > vcap
        if capped.any():
            np.minimum(np.maximum(target_v, -vcap, out=target_v), vcap, out=target_v)
            target_a[capped] = 0.0
        if (np.abs(target_p - current_p) > lay.max_travel).any() and note is not None:
            note(Intervention.DYNAMICS_LIMIT)
