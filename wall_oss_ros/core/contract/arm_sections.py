"""The contract sections of arms on joint-space controllers: an ee_pose group's `ik:` section (the arm in a
URDF and its joint limits) and the robot's `self_collision:` section (link sets kept apart)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from wall_oss_ros.core.contract.model import ArmIkModel, AxisLimits, SelfCollisionModel

if TYPE_CHECKING:
    from wall_oss_ros.core.contract.loader import _Section


def urdf_joint_bounds(path: str, joints: tuple[str, ...], sec: _Section) -> list[tuple[float, float]]:
    import pinocchio as pin

    model = pin.buildModelFromUrdf(path)
    missing = [j for j in joints if not model.existJointName(j)]
    if missing:
        raise sec.error("joints", f"{path} has no joints {missing[:4]}")
    bounds = []
    for j in joints:
        joint = model.joints[model.getJointId(j)]
        if joint.nq != 1:
            raise sec.error("joints", f"{j} is not a one-DoF (revolute or prismatic) joint")
        bounds.append((float(model.lowerPositionLimit[joint.idx_q]), float(model.upperPositionLimit[joint.idx_q])))
    return bounds


def ik_section(sec: _Section, contract_dir: Path) -> ArmIkModel:
    """An ee_pose group's `ik:` section: the arm in a URDF and its joint limits (positions from the URDF)."""
    from wall_oss_ros.core.contract.loader import _joint_limits, _resolve_model_path

    path = _resolve_model_path(sec, "urdf", contract_dir)
    joints = sec.strings("joints")
    limits_sec = sec.section("limits")
    _, limits, tolerance = _joint_limits(limits_sec, len(joints), ("rad",))
    bounds = urdf_joint_bounds(path, joints, sec)
    checked = []
    for joint, lim, (lo_urdf, hi_urdf) in zip(joints, limits, bounds, strict=True):
        lo = lim.position_min if math.isfinite(lim.position_min) else lo_urdf
        hi = lim.position_max if math.isfinite(lim.position_max) else hi_urdf
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo < lo_urdf or hi > hi_urdf:
            raise limits_sec.error("position_min_rad", f"{joint}: [{lo}, {hi}] must be finite and within the "
                                   f"URDF's [{lo_urdf}, {hi_urdf}]")
        if lo + 2 * lim.position_margin >= hi:
            raise limits_sec.error("position_margin_rad", f"{joint}: the margin leaves no room in [{lo}, {hi}]")
        checked.append(AxisLimits(lim.velocity_max, lim.acceleration_max, lim.jerk_max, lo, hi,
                                  lim.position_margin, lim.max_step))
    limits_sec.finish()
    singular = sec.section("singularity", required=False)
    thresholds = [17.0, 30.0, 2.0]
    if singular is not None:
        thresholds = [singular.number("decelerate_condition", 17.0, positive=True),
                      singular.number("stop_condition", 30.0, positive=True),
                      singular.number("leaving_multiplier", 2.0, positive=True)]
        if thresholds[0] >= thresholds[1]:
            raise singular.error("decelerate_condition", "must be below stop_condition")
        singular.finish()
    model = ArmIkModel(path, sec.string("base_frame"), sec.string("tip_frame"), joints, tuple(checked), tolerance,
                       *thresholds)
    sec.finish()
    return model


def self_collision_section(sec: _Section, contract_dir: Path) -> SelfCollisionModel:
    from wall_oss_ros.core.contract.loader import _resolve_model_path

    path = _resolve_model_path(sec, "urdf", contract_dir)
    sets_sec = sec.section("link_sets")
    sets = {name: sets_sec.strings(name) for name in list(sets_sec.data)}
    sets_sec.finish()
    pairs_raw = sec.raw("pairs")
    if not isinstance(pairs_raw, list) or not pairs_raw:
        raise sec.error("pairs", "expected a non-empty list of [set, set] pairs")
    pairs = []
    for pair in pairs_raw:
        if not (isinstance(pair, list) and len(pair) == 2 and all(p in sets for p in pair)):
            raise sec.error("pairs", f"{pair!r} is not a pair of link_sets names ({sorted(sets)})")
        pairs.append((sets[pair[0]], sets[pair[1]]))
    proximity = sec.number("proximity_threshold_m", positive=True)
    stop = sec.number("stop_distance_m", positive=True)
    if stop >= proximity:
        raise sec.error("stop_distance_m", f"must be below proximity_threshold_m ({proximity})")
    sec.finish()
    return SelfCollisionModel(path, tuple(pairs), proximity, stop)
