"""What the fields of a wall-x server's websocket schema mean in one robot contract, read from a small YAML
file under config/servers/ (or a path), so that no mapping is hard-coded.

The wall-x 1.1.0 server (`wall_x/_vendor/harrix/serving`) speaks of arms, not of groups: state and reply
carry `follow1_pos` / `follow2_pos` = [x, y, z, roll, pitch, yaw, gripper] (ZYX Euler, R = Rz·Ry·Rx, rad;
follow1 is the left arm), views under its own camera keys. The file says which contract groups and
cameras those are, and how the server was started (reply form, image passing, batching), since the
server's metadata says none of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wall_oss_ros.core.contract import GroupKind, RobotContract
from wall_oss_ros.core.resources import config_path

INFER_MODES = ("flow", "flow_with_subtask")  # the server's action modes this client reads a chunk from
RESPONSES = ("follow_pos", "predict_action")
IMAGE_PASSING = ("base64", "numpy")
DEFAULT_PORT = 43007  # launch_serving.py's default


class SchemaError(ValueError):
    """A server schema file that does not fit its protocol or the contract."""


@dataclass(frozen=True)
class Arm:
    key: str  # the server's pose key, e.g. follow1_pos
    pose_group: str  # contract ee_pose group
    gripper_group: str  # contract gripper group
    gripper_scale: float  # server value = gripper_scale · robot value (robot unit → the server's)


@dataclass(frozen=True)
class WallxSchema:
    source: str
    infer_mode: str
    response: str  # follow_pos: (1+H)×7 rows per arm, row 0 the state sent | predict_action: raw (H, D)
    image_passing: str
    server_batching: bool  # the batched path converts a decoded JPEG from BGR to RGB; the single path does not
    jpeg_quality: int
    views: tuple[tuple[str, str], ...]  # (server view key, contract camera)
    arms: tuple[Arm, ...]

    @property
    def jpeg_holds_rgb_as_bgr(self) -> bool:
        """The single-request path hands cv2.imdecode's array (BGR by OpenCV's convention) to the model as is:
        for the model to see RGB, the JPEG is written from the RGB array as if it were BGR."""
        return not self.server_batching


_FIELDS = {"protocol", "contract", "infer_mode", "response", "image_passing", "server_batching", "jpeg_quality",
           "views", "arms"}
_ARM_FIELDS = {"pose", "gripper", "gripper_scale"}


def schema_file(ref: str) -> Path:
    """A schema name under config/servers/, or a path to a YAML file."""
    path = Path(ref)
    return path if path.suffix in (".yaml", ".yml") else config_path("servers", f"{ref}.yaml")


def _choice(raw: dict, key: str, allowed: tuple[str, ...], default: str) -> str:
    value = raw.get(key, default)
    if value not in allowed:
        raise SchemaError(f"{key}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _group(contract: RobotContract, name: Any, kind: GroupKind, where: str) -> str:
    try:
        group = contract.group(str(name))
    except KeyError as exc:
        raise SchemaError(f"{where}: contract {contract.name} has no group {name!r}") from exc
    if group.kind is not kind:
        raise SchemaError(f"{where}: group {name!r} is {group.kind.value}, not {kind.value}")
    if kind is GroupKind.GRIPPER and group.action_dim != 1:
        raise SchemaError(f"{where}: gripper group {name!r} has {group.action_dim} axes; the server carries one")
    if not group.state_slots:
        raise SchemaError(f"{where}: group {name!r} has no state, but the server's pose includes it")
    return group.name


def parse_schema(raw: Any, contract: RobotContract, source: str = "") -> WallxSchema:
    """The schema, checked against the contract; SchemaError says which field is wrong."""
    if not isinstance(raw, dict):
        raise SchemaError(f"{source}: expected a YAML map")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise SchemaError(f"{source}: unknown fields {sorted(unknown)} (known: {sorted(_FIELDS)})")
    if raw.get("protocol") != "wallx":
        raise SchemaError(f"{source}: protocol must be wallx, got {raw.get('protocol')!r}")
    if raw.get("contract", contract.name) != contract.name:
        raise SchemaError(f"{source}: written for contract {raw['contract']!r}, not {contract.name!r}")
    cameras = {c.name for c in contract.cameras}
    views = raw.get("views") or {}
    if not isinstance(views, dict) or not views:
        raise SchemaError(f"{source}: views must map the server's view keys to contract cameras")
    for key, camera in views.items():
        if camera not in cameras:
            raise SchemaError(f"{source}: views.{key}: contract {contract.name} has no camera {camera!r} "
                              f"(it has {sorted(cameras)})")
    arms, used = [], []
    for key, entry in (raw.get("arms") or {}).items():
        where = f"{source}: arms.{key}"
        if not isinstance(entry, dict) or set(entry) - _ARM_FIELDS or not {"pose", "gripper"} <= set(entry):
            raise SchemaError(f"{where}: expected {{pose: <ee_pose group>, gripper: <gripper group>, "
                              "gripper_scale: <server per robot unit>}")
        scale = float(entry.get("gripper_scale", 1.0))
        if not scale > 0.0:
            raise SchemaError(f"{where}: gripper_scale must be positive")
        arm = Arm(str(key), _group(contract, entry["pose"], GroupKind.EE_POSE, where),
                  _group(contract, entry["gripper"], GroupKind.GRIPPER, where), scale)
        arms.append(arm)
        used += [arm.pose_group, arm.gripper_group]
    if not arms:
        raise SchemaError(f"{source}: arms must map the server's pose keys (follow1_pos, ...) to contract groups")
    if len(set(used)) != len(used):
        raise SchemaError(f"{source}: a contract group is mapped to two arms")
    response = _choice(raw, "response", RESPONSES, "follow_pos")
    if response == "follow_pos":
        unmapped = [g.name for g in contract.groups if g.name not in used]
        if unmapped:
            raise SchemaError(f"{source}: groups {unmapped} have no place in the server's follow_pos reply "
                              "(poses and grippers only): map them, or use response: predict_action")
    quality = raw.get("jpeg_quality", 95)
    if not isinstance(quality, int) or not 1 <= quality <= 100:
        raise SchemaError(f"{source}: jpeg_quality must be an integer in 1..100")
    batching = raw.get("server_batching", False)
    if not isinstance(batching, bool):
        raise SchemaError(f"{source}: server_batching must be true or false")
    return WallxSchema(source, _choice(raw, "infer_mode", INFER_MODES, "flow"), response,
                       _choice(raw, "image_passing", IMAGE_PASSING, "base64"), batching, quality,
                       tuple((str(k), str(v)) for k, v in views.items()), tuple(arms))


def load_schema(ref: str, contract: RobotContract) -> WallxSchema:
    path = schema_file(ref)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SchemaError(f"server schema {ref!r}: cannot read {path} ({exc})") from exc
    except yaml.YAMLError as exc:
        raise SchemaError(f"server schema {path}: not valid YAML ({exc})") from exc
    return parse_schema(raw, contract, str(path))
