"""Requests to and replies from the wall-x 1.1.0 policy server, in one robot contract's terms.

Request: {"state": {"follow1_pos": [x y z roll pitch yaw grip], ...}, "views": {key: base64 JPEG or RGB array},
"instruction", "infer_mode"}. Reply (`serialize_actions` on, the server's default): per arm (1+H) rows of
7, absolute poses, row 0 the state it was sent; it is checked against the state sent (a server that trims
the front of its chunk would otherwise shift every action by a step) and dropped. Row k ≥ 1 is step k-1
of the chunk, as the model's action k-1 is for the local backend.
With `serialize_actions` off the reply is the model's raw `predict_action` (H, D) in its action slots.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from wall_oss_ros.core.contract import Representation, RobotContract
from wall_oss_ros.core.observation import state_columns, state_names
from wall_oss_ros.core.rotations import matrix_to_rot6d, rot6d_to_matrix
from wall_oss_ros.policy.backend import ChunkResult, Observation
from wall_oss_ros.policy.remote.openpi_codec import ProtocolError
from wall_oss_ros.policy.remote.wallx_schema import Arm, WallxSchema

EULER = "xyz"  # scipy: extrinsic x, y, z of (roll, pitch, yaw) is R = Rz(yaw)·Ry(pitch)·Rx(roll), wall-x's ZYX
ROW0_POSITION_TOLERANCE_M = 1e-5  # row 0 must be the state sent, up to float round-off
ROW0_ROTATION_TOLERANCE_RAD = 1e-5
ROW0_GRIPPER_TOLERANCE = 1e-5


def checked_state(observation: Observation, contract: RobotContract) -> np.ndarray:
    state = np.asarray(observation.state, dtype=np.float64)
    names = state_names(contract)
    if state.shape != (len(names),):
        raise ValueError(f"state: shape {state.shape}, the contract has {len(names)} values ({names[0]}, …)")
    bad = [names[i] for i in np.flatnonzero(~np.isfinite(state))]
    if bad:
        raise ValueError(f"state: not finite for {bad[:4]}")
    return state


def _pose_of(state: np.ndarray, columns: slice) -> tuple[np.ndarray, np.ndarray]:
    values = state[columns]
    return values[:3], rot6d_to_matrix(values[3:9])


def wire_pose(contract: RobotContract, arm: Arm, state: np.ndarray) -> np.ndarray:
    """An arm's [x, y, z, roll, pitch, yaw, grip] from the contract's state vector."""
    columns = state_columns(contract)
    xyz, rotation = _pose_of(state, columns[arm.pose_group])
    grip = state[columns[arm.gripper_group]][0] * arm.gripper_scale
    return np.concatenate([xyz, Rotation.from_matrix(rotation).as_euler(EULER), [grip]])


def encode_view(image: np.ndarray, schema: WallxSchema) -> Any:
    """An H×W×3 uint8 RGB frame as the server must receive it for its model to see RGB."""
    if schema.image_passing == "numpy":
        return np.ascontiguousarray(image)  # no decoding, no conversion on either path
    # cv2 writes its input as BGR: the single path decodes without converting, so it gets the RGB array back.
    source = image if schema.jpeg_holds_rgb_as_bgr else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, jpeg = cv2.imencode(".jpg", source, [cv2.IMWRITE_JPEG_QUALITY, schema.jpeg_quality])
    if not ok:
        raise ValueError(f"JPEG encoding failed for a {image.shape} frame")
    return base64.b64encode(jpeg.tobytes()).decode("ascii")


def request_message(observation: Observation, contract: RobotContract, schema: WallxSchema) -> dict[str, Any]:
    state = checked_state(observation, contract)
    missing = [cam for _, cam in schema.views if cam not in observation.images]
    if missing:
        raise ValueError(f"no frame of cameras {missing} for the server's views")
    return {"state": {arm.key: wire_pose(contract, arm, state) for arm in schema.arms},
            "views": {key: encode_view(observation.images[cam], schema) for key, cam in schema.views},
            "instruction": observation.instruction, "infer_mode": schema.infer_mode}


# ---------------------------------------------------------------- replies
def _field(message: Any, key: str) -> Any:
    if not isinstance(message, Mapping):
        raise ProtocolError(f"expected a map, got {type(message).__name__}")
    if key not in message:
        raise ProtocolError(f"missing {key!r} (the reply has {sorted(map(str, message))[:8]})")
    return message[key]


def _rows(value: Any, name: str, width: int | None = None) -> np.ndarray:
    try:
        rows = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"{name}: not a numeric table") from exc
    if rows.ndim == 3 and rows.shape[0] == 1:  # the model's batch of one
        rows = rows[0]
    if rows.ndim != 2 or (width is not None and rows.shape[1] != width) or not np.all(np.isfinite(rows)):
        raise ProtocolError(f"{name}: expected finite rows of {width or 'D'} values, got shape {rows.shape}")
    return rows


def _check_row0(arm: Arm, row0: np.ndarray, sent: np.ndarray) -> None:
    angle = (Rotation.from_euler(EULER, row0[3:6]) * Rotation.from_euler(EULER, sent[3:6]).inv()).magnitude()
    if (np.abs(row0[:3] - sent[:3]).max() > ROW0_POSITION_TOLERANCE_M or angle > ROW0_ROTATION_TOLERANCE_RAD
            or abs(row0[6] - sent[6]) > ROW0_GRIPPER_TOLERANCE):
        raise ProtocolError(f"{arm.key} row 0 {np.round(row0, 4).tolist()} is not the state sent "
                            f"{np.round(sent, 4).tolist()}: the server's rows must start at the current state "
                            "(robot_action_start_ratio 0)")


def _arm_actions(contract: RobotContract, arm: Arm, rows: np.ndarray, state: np.ndarray,
                 actions: np.ndarray) -> None:
    """Absolute rows 1.. of one arm into the contract's action columns (relative to the state sent where the
    group is relative)."""
    group = contract.group(arm.pose_group)
    xyz_obs, rotation_obs = _pose_of(state, state_columns(contract)[arm.pose_group])
    xyz, rotation = rows[:, :3], Rotation.from_euler(EULER, rows[:, 3:6]).as_matrix()
    if group.representation is Representation.RELATIVE:
        xyz = xyz - xyz_obs
        rotation = (rotation @ rotation_obs.T if group.rotation_frame == "base" else rotation_obs.T @ rotation)
    actions[:, contract.action_slice(group)] = np.concatenate([xyz, matrix_to_rot6d(rotation)], axis=1)
    actions[:, contract.action_slice(arm.gripper_group)] = rows[:, 6:7] / arm.gripper_scale


def parse_response(message: Any, observation: Observation, contract: RobotContract, schema: WallxSchema,
                   start_s: float, end_s: float) -> ChunkResult:
    error = message.get("error") if isinstance(message, Mapping) else None  # the batched path's failure reply
    if error is not None and not (isinstance(error, str | bytes) and not error):
        raise ProtocolError(f"the server reports an error: {str(error)[:300]}")
    state = np.asarray(observation.state, dtype=np.float64)
    if schema.response == "predict_action":
        raw = _rows(_field(message, "predict_action"), "predict_action")
        slots = [s for g in contract.groups for s in g.action_slots]
        if raw.shape[1] <= max(slots):
            raise ProtocolError(f"predict_action has {raw.shape[1]} columns; the contract's action slots reach "
                                f"{max(slots)}")
        actions = raw[:, slots]
    else:
        tables = {arm.key: _rows(_field(message, arm.key), arm.key, 7) for arm in schema.arms}
        lengths = {len(t) for t in tables.values()}
        if len(lengths) != 1 or min(lengths) < 2:
            raise ProtocolError(f"arms' rows: expected one length ≥ 2 (row 0 and a chunk), got "
                                f"{ {k: len(t) for k, t in tables.items()} }")
        actions = np.zeros((min(lengths) - 1, contract.action_dim))
        for arm in schema.arms:
            _check_row0(arm, tables[arm.key][0], wire_pose(contract, arm, state))
            _arm_actions(contract, arm, tables[arm.key][1:], state, actions)
    subtask = message.get("subtask", "") if isinstance(message, Mapping) else ""
    return ChunkResult(actions, contract.action_names, contract.dt_s, state_names(contract), state, start_s, end_s,
                       denoising_steps=0, subtask=subtask if isinstance(subtask, str) else "")
