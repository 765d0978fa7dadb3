"""Predicted tool-tip paths of a plan, for visualisation: FK of joint groups, positions of EE groups (those
through IK in their arm's base frame).

Groups without a kinematic model (and grippers, bases) have no tip to draw and are left out.
"""

from __future__ import annotations

import numpy as np

from wall_oss_ros.core.contract import GroupKind
from wall_oss_ros.core.executor import Executor


def tip_paths(executor: Executor, committed: np.ndarray) -> dict[str, np.ndarray]:
    """Per drawable group, (1 + K, 3) tip positions [m]: the current command, then each committed step."""
    command = executor.command_positions
    poses = executor.ik_poses()
    paths = {}
    for ga in executor.groups:
        if ga.kind is GroupKind.EE_POSE:  # arms through IK: from the Cartesian command (their base frame)
            start = poses[ga.group.name][0] if ga.ik is not None else command[ga.pos]
            paths[ga.group.name] = np.vstack([start, committed[:, ga.cols][:, :3]])
        elif ga.fk is not None:
            joints = np.vstack([command[ga.axes], committed[:, ga.cols]])
            paths[ga.group.name] = np.array([ga.fk.position(q) for q in joints])
    return paths
