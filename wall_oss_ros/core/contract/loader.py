"""Robot contract YAML → validated RobotContract; every error names the file, the key and the reason."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from wall_oss_ros.core.contract.arm_sections import ik_section, self_collision_section
from wall_oss_ros.core.contract.errors import ContractError
from wall_oss_ros.core.contract.model import (
    BASE_AXES,
    EE_POSITION_AXES,
    EE_ROTATION_AXES,
    OUTPUTS_BY_KIND,
    AxisLimits,
    Camera,
    CameraTransport,
    Group,
    GroupKind,
    KinematicModel,
    Output,
    OutputKind,
    Representation,
    RobotContract,
    Workspace,
)
from wall_oss_ros.core.contract.view_names import view_name
from wall_oss_ros.core.resources import config_path, package_share

JOINT_UNITS = ("rad", "m")
GRIPPER_UNITS = ("rad", "m", "norm")


class _Section:
    """A mapping being read, with its key path for messages; unknown keys are errors (typos)."""

    def __init__(self, data: object, source: str, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ContractError(source, path or "<root>", f"expected a mapping, got {type(data).__name__}")
        self.data, self.source, self.path = dict(data), source, path
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, reason: str) -> ContractError:
        return ContractError(self.source, self.key(name), reason)

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str, default: Any = ..., *, required: bool = True) -> Any:
        if name in self.data:
            self.used.add(name)
            return self.data[name]
        if default is not ... or not required:
            return None if default is ... else default
        raise self.error(name, "required key is missing")

    def string(self, name: str, default: str | None = None, choices: Sequence[str] | None = None) -> str:
        value = self.raw(name, ... if default is None else default)
        if not isinstance(value, str) or not value:
            raise self.error(name, f"expected a non-empty string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.error(name, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def number(self, name: str, default: float | None = None, *, positive: bool = False) -> float:
        value = self.raw(name, ... if default is None else default)
        return _number(value, self, name, positive=positive)

    def strings(self, name: str, *, required: bool = True) -> tuple[str, ...]:
        value = self.raw(name, required=required)
        if value is None:
            return ()
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise self.error(name, f"expected a non-empty list of strings, got {value!r}")
        if len(set(value)) != len(value):
            raise self.error(name, "names must be unique")
        return tuple(value)

    def per_axis(self, name: str, n: int, *, positive: bool = False, default: float | None = None) -> tuple[float, ...]:
        """A scalar (same for every axis) or a list with one number per axis."""
        value = self.raw(name, ... if default is None else default)
        items = value if isinstance(value, list) else [value] * n
        if len(items) != n:
            raise self.error(name, f"expected {n} values (one per axis) or one scalar, got {len(items)}")
        return tuple(_number(v, self, name, positive=positive) for v in items)

    def unit_key(self, base: str, units: Sequence[str], suffix: str = "") -> tuple[str | None, str | None]:
        """Find `<base>_<unit><suffix>` among the keys; returns (key, unit) or (None, None)."""
        found = [(f"{base}_{u}{suffix}", u) for u in units if f"{base}_{u}{suffix}" in self.data]
        if len(found) > 1:
            raise self.error(found[1][0], f"conflicts with {found[0][0]}: give one unit")
        return found[0] if found else (None, None)

    def section(self, name: str, *, required: bool = True) -> _Section | None:
        value = self.raw(name, required=required)
        if value is None and not required:
            return None
        return _Section(value, self.source, self.key(name))

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key (misspelt, or not valid here)")


def _number(value: object, sec: _Section, name: str, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise sec.error(name, f"expected a number, got {value!r}")
    number = float(value)
    if math.isnan(number):
        raise sec.error(name, "NaN is not a valid value")
    if positive and not (number > 0 and math.isfinite(number)):
        raise sec.error(name, f"must be a positive finite number, got {value!r}")
    return number


def _slots(sec: _Section, name: str, n: int, width: int, *, required: bool = True) -> tuple[int, ...]:
    value = sec.raw(name, required=required)
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) != n:
        raise sec.error(name, f"expected a list of {n} slot indices, got {value!r}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < width:
            raise sec.error(name, f"slot {v!r} is not an integer in [0, {width})")
    return tuple(value)


def _joint_limits(sec: _Section, n: int, units: Sequence[str]) -> tuple[str, tuple[AxisLimits, ...], float | None]:
    key, unit = sec.unit_key("velocity_max", units, "_s")
    if key is None:
        raise sec.error(f"velocity_max_<{'|'.join(units)}>_s", "required key is missing")
    vel = sec.per_axis(key, n, positive=True)
    acc = sec.per_axis(f"acceleration_max_{unit}_s2", n, positive=True)
    jerk = sec.per_axis(f"jerk_max_{unit}_s3", n, positive=True)
    lo = sec.per_axis(f"position_min_{unit}", n, default=-math.inf)
    hi = sec.per_axis(f"position_max_{unit}", n, default=math.inf)
    margin = sec.per_axis(f"position_margin_{unit}", n, default=0.0)
    step = sec.per_axis(f"max_step_{unit}", n, positive=True) if sec.has(f"max_step_{unit}") else (None,) * n
    tolerance_key = f"tracking_tolerance_{unit}"
    tolerance = sec.number(tolerance_key, positive=True) if sec.has(tolerance_key) else None
    for i in range(n):
        if margin[i] < 0:
            raise sec.error(f"position_margin_{unit}", "must not be negative")
        if lo[i] + 2 * margin[i] >= hi[i]:
            raise sec.error(f"position_min_{unit}", f"axis {i}: min {lo[i]} + 2 x margin is not below max {hi[i]}")
    limits = tuple(AxisLimits(vel[i], acc[i], jerk[i], lo[i], hi[i], margin[i], step[i]) for i in range(n))
    return unit, limits, tolerance


def _resolve_model_path(sec: _Section, name: str, contract_dir: Path) -> str:
    ref = sec.string(name)
    if ref.startswith("package://"):  # a ROS package's share directory, as URDFs name their meshes
        package, _, rel = ref[len("package://"):].partition("/")
        try:
            path = package_share(package) / rel
        except FileNotFoundError as exc:
            raise sec.error(name, str(exc)) from exc
    elif ref.startswith("pkg://"):
        package, _, rel = ref[len("pkg://"):].partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise sec.error(name, f"Python package {package!r} is not installed")
        path = Path(next(iter(spec.submodule_search_locations))) / rel
    else:
        path = Path(ref) if Path(ref).is_absolute() else contract_dir / ref
    if not path.is_file():
        raise sec.error(name, f"file not found: {path}")
    return str(path.resolve())


def _workspace(sec: _Section) -> Workspace:
    lo = sec.per_axis("min_m", 3)
    hi = sec.per_axis("max_m", 3)
    if not all(a < b for a, b in zip(lo, hi, strict=True)):
        raise sec.error("min_m", f"every min must be below its max ({lo} vs {hi})")
    return Workspace(lo, hi)


def _kinematics(sec: _Section, joints: tuple[str, ...], contract_dir: Path) -> KinematicModel:
    fmt = "urdf" if sec.has("urdf") else "mjcf" if sec.has("mjcf") else None
    if fmt is None:
        raise sec.error("urdf|mjcf", "give the robot description as `urdf:` or `mjcf:`")
    path = _resolve_model_path(sec, fmt, contract_dir)
    tip = sec.string("tip")
    model_joints = sec.strings("joints", required=False) or joints
    if len(model_joints) != len(joints):
        raise sec.error("joints", f"expected {len(joints)} model joint names, got {len(model_joints)}")
    sec.finish()
    return KinematicModel(path, fmt, tip, model_joints)


def _output(sec: _Section, kind: GroupKind, with_ik: bool = False) -> Output:
    kinds = OUTPUTS_BY_KIND[GroupKind.JOINT_POSITION] if with_ik else OUTPUTS_BY_KIND[kind]
    allowed = sorted(k.value for k in kinds)
    out_kind = OutputKind(sec.string("kind", choices=allowed))
    topic = sec.string("topic")
    frame = sec.raw("frame_id", "")
    sec.finish()
    return Output(out_kind, topic, str(frame))


def _group(sec: _Section, contract: _Section, width: int, state_width: int, contract_dir: Path) -> Group:
    name = sec.string("name")
    if "/" in name:
        raise sec.error("name", "group names may not contain '/'")
    kind = GroupKind(sec.string("kind", choices=[k.value for k in GroupKind]))
    representation = Representation(sec.string("representation", "absolute", [r.value for r in Representation]))
    limits_sec = sec.section("limits")
    workspace = kinematics = ik = None
    tolerance: float | None = None
    continuous: tuple[bool, ...] = ()
    state_topic, rotation_frame = "", "base"

    if kind in (GroupKind.JOINT_POSITION, GroupKind.GRIPPER):
        axes = sec.strings("joints")
        if kind is GroupKind.GRIPPER and len(axes) != 1:
            raise sec.error("joints", "a gripper group has exactly one axis")
        unit, limits, tolerance = _joint_limits(limits_sec, len(axes),
                                                JOINT_UNITS if kind is GroupKind.JOINT_POSITION else GRIPPER_UNITS)
        cont = set(sec.strings("continuous", required=False))
        if cont - set(axes):
            raise sec.error("continuous", f"{sorted(cont - set(axes))} are not joints of this group")
        continuous = tuple(a in cont for a in axes)
        for axis, lim, is_cont in zip(axes, limits, continuous, strict=True):
            if not is_cont and not (math.isfinite(lim.position_min) and math.isfinite(lim.position_max)):
                raise limits_sec.error(f"position_min_{unit}", f"joint {axis} has no position limits (both min "
                                       "and max); list it under `continuous` if it really has none")
        limits = tuple(AxisLimits(lim.velocity_max, lim.acceleration_max, lim.jerk_max, max_step=lim.max_step)
                       if c else lim for lim, c in zip(limits, continuous, strict=True))
        ws = sec.section("workspace", required=False)
        if ws is not None:
            if kind is not GroupKind.JOINT_POSITION:
                raise sec.error("workspace", "only joint_position and ee_pose groups have a workspace")
            kin = ws.section("kinematics")
            kinematics = _kinematics(kin, axes, contract_dir)
            workspace = _workspace(ws)
            ws.finish()
    elif kind is GroupKind.BASE_TWIST:
        axes = sec.strings("axes", required=False) or BASE_AXES
        if set(axes) - set(BASE_AXES):
            raise sec.error("axes", f"base axes are a subset of {list(BASE_AXES)}")
        if representation is not Representation.ABSOLUTE:
            raise sec.error("representation", "a base twist is a velocity: only 'absolute' applies")
        unit = "m_s"
        lin = [limits_sec.number(k, positive=True) for k in
               ("linear_velocity_max_m_s", "linear_acceleration_max_m_s2")]
        ang = [limits_sec.number(k, positive=True) for k in
               ("angular_velocity_max_rad_s", "angular_acceleration_max_rad_s2")]
        lin.append(limits_sec.number("linear_jerk_max_m_s3", 10.0 * lin[1], positive=True))
        ang.append(limits_sec.number("angular_jerk_max_rad_s3", 10.0 * ang[1], positive=True))
        limits = tuple(AxisLimits(*(ang if a == "wz" else lin)) for a in axes)
    else:  # EE pose
        axes = EE_POSITION_AXES + EE_ROTATION_AXES
        unit = "m"
        workspace = Workspace(limits_sec.per_axis("workspace_min_m", 3), limits_sec.per_axis("workspace_max_m", 3))
        if not all(a < b for a, b in zip(workspace.min_m, workspace.max_m, strict=True)):
            raise limits_sec.error("workspace_min_m", "every min must be below its max")
        lin = [limits_sec.number(k, positive=True) for k in
               ("linear_velocity_max_m_s", "linear_acceleration_max_m_s2", "linear_jerk_max_m_s3")]
        ang = [limits_sec.number(k, positive=True) for k in
               ("angular_velocity_max_rad_s", "angular_acceleration_max_rad_s2", "angular_jerk_max_rad_s3")]
        step = limits_sec.number("max_step_m", positive=True) if limits_sec.has("max_step_m") else None
        limits = tuple(AxisLimits(*lin, position_min=lo, position_max=hi, max_step=step)
                       for lo, hi in zip(workspace.min_m, workspace.max_m, strict=True))
        limits += (AxisLimits(*ang),) * 3
        if limits_sec.has("tracking_tolerance_m"):
            tolerance = limits_sec.number("tracking_tolerance_m", positive=True)
        ik_sec = sec.section("ik", required=False)
        if ik_sec is not None:  # joint-space controllers: the pose is measured through the arm's joints
            ik = ik_section(ik_sec, contract_dir)
            tolerance = ik.tracking_tolerance_rad
            if limits_sec.has("tracking_tolerance_m"):
                raise limits_sec.error("tracking_tolerance_m", "an ee_pose group with ik tracks its joints: give "
                                       "ik.limits.tracking_tolerance_rad")
        else:
            state_topic = sec.string("state_topic")
        rotation_frame = sec.string("rotation_frame", "base", ["base", "tool"])
    limits_sec.finish()

    output = _output(sec.section("output"), kind, ik is not None)
    if output.kind in (OutputKind.POSE_STAMPED, OutputKind.TWIST_STAMPED) and not output.frame_id:
        raise sec.error("output.frame_id", f"a {output.kind.value} output needs a frame_id")
    action_slots = _slots(sec, "action_slots", len(axes), width)
    state_axes = 0 if kind is GroupKind.BASE_TWIST else len(axes)
    state_slots = _slots(sec, "state_slots", state_axes, state_width, required=False)
    if representation is Representation.RELATIVE and not state_slots and kind is not GroupKind.EE_POSE:
        raise sec.error("state_slots", "relative actions compose onto the observed state: give state_slots")
    sec.finish()
    return Group(name, kind, axes, unit, representation, limits, output, action_slots, state_slots, continuous,
                 workspace, kinematics, tolerance, state_topic, rotation_frame, ik)


def _camera(sec: _Section) -> Camera:
    camera = Camera(sec.string("name"), sec.string("topic"),
                    CameraTransport(sec.string("transport", "raw", [t.value for t in CameraTransport])),
                    sec.string("view", view_name(str(sec.data.get("name", "camera")))))
    sec.finish()
    return camera


def _unique(values: Sequence[object], sec: _Section, key: str, what: str) -> None:
    seen: set[object] = set()
    for v in values:
        if v in seen:
            raise sec.error(key, f"{what} {v!r} is used twice")
        seen.add(v)


def parse_contract(data: object, source: str = "<contract>", base_dir: Path | None = None) -> RobotContract:
    """Validate an already-parsed YAML document."""
    root = _Section(data, source, "")
    name = root.string("name")
    description = str(root.raw("description", ""))
    dt_s = root.number("dt_s", positive=True)
    model = root.section("model")
    width = int(model.number("max_action_dim", positive=True))
    state_width = int(model.number("max_state_dim", positive=True))
    model.finish()
    topics = root.strings("joint_state_topics", required=False) or ("/joint_states",)
    cams_raw = root.raw("cameras", [])
    if not isinstance(cams_raw, list):
        raise root.error("cameras", "expected a list")
    cameras = tuple(_camera(_Section(c, source, f"cameras[{i}]")) for i, c in enumerate(cams_raw))
    _unique([c.name for c in cameras], root, "cameras", "camera name")
    groups_raw = root.raw("groups")
    if not isinstance(groups_raw, list) or not groups_raw:
        raise root.error("groups", "expected a non-empty list of groups")
    contract_dir = base_dir or Path.cwd()
    groups = tuple(_group(_Section(g, source, f"groups[{i}]"), root, width, state_width, contract_dir)
                   for i, g in enumerate(groups_raw))
    collision_sec = root.section("self_collision", required=False)
    self_collision = self_collision_section(collision_sec, contract_dir) if collision_sec is not None else None
    root.finish()
    _unique([g.name for g in groups], root, "groups", "group name")
    _unique([s for g in groups for s in g.action_slots], root, "groups", "action slot")
    _unique([s for g in groups for s in g.state_slots], root, "groups", "state slot")
    _unique([a for g in groups for a in g.joints], root, "groups", "joint")
    _unique([g.output.topic for g in groups], root, "groups", "output topic")
    return RobotContract(name, source, dt_s, width, state_width, groups, cameras, topics, description, self_collision)


def load_contract(path: str | Path) -> RobotContract:
    """Load and validate a robot contract YAML file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ContractError(str(path), "<file>", f"cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractError(str(path), "<yaml>", f"not valid YAML: {exc}") from exc
    return parse_contract(data, str(path), path.resolve().parent)


def contract_file(ref: str) -> Path:
    """A contract name under config/robots/, or a path to a YAML file."""
    path = Path(ref)
    return path if path.suffix in (".yaml", ".yml") else config_path("robots", f"{ref}.yaml")


def resolve_contract(ref: str) -> RobotContract:
    """Load the contract a node parameter or a command-line argument names (name or YAML path)."""
    return load_contract(contract_file(ref))
