"""The requests and responses wall_oss_ros puts on openpi's protocol, as plain maps of arrays and strings.

openpi fixes the framing and the array codec, not the keys: its servers take whatever their policy's input
transform reads. Ours (`wall-oss-ros serve`) reads the keys below, named after openpi's own conventions
where they have one ("images", "state", "prompt", "actions", "server_timing"); the rest carry what a
backend needs beyond them (the observation stamp that seeds the noise, RTC's committed steps). A client
that sends only images, state and prompt, as openpi's examples do, gets a chunk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from wall_oss_ros.policy.backend import ChunkResult, Observation, RtcRequest
from wall_oss_ros.policy.remote.openpi_codec import ProtocolError


def _array(value: Any, name: str, ndim: int, kind: str = "f") -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.ndim != ndim or value.dtype.kind not in kind:
        got = f"{value.dtype} array of shape {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
        raise ProtocolError(f"{name}: expected a {ndim}-D array of kind {kind!r}, got {got}")
    return value


def _text(value: Any, name: str) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise ProtocolError(f"{name}: expected a string, got {type(value).__name__}")
    return value


def _optional_text(message: Mapping, key: str) -> str:
    value = _optional(message, key)
    return "" if value is None else _text(value, key)


def _field(message: Mapping, key: str) -> Any:
    if not isinstance(message, Mapping):
        raise ProtocolError(f"expected a map, got {type(message).__name__}")
    if key in message:
        return message[key]
    if key.encode() in message:
        return message[key.encode()]
    raise ProtocolError(f"missing {key!r}")


def _optional(message: Mapping, key: str) -> Any:
    try:
        return _field(message, key)
    except ProtocolError:
        return None


def request_message(observation: Observation, rtc: RtcRequest | None) -> dict[str, Any]:
    message: dict[str, Any] = {"images": {k: np.ascontiguousarray(v) for k, v in observation.images.items()},
                               "state": np.asarray(observation.state, dtype=np.float64),
                               "prompt": observation.instruction}
    if observation.stamp_ns is not None:
        message["stamp_ns"] = int(observation.stamp_ns)
    if rtc is not None:
        message["rtc"] = {"committed": np.asarray(rtc.committed, dtype=np.float64), "delay_steps": int(rtc.delay_steps)}
    return message


def parse_request(message: Any) -> tuple[Observation, RtcRequest | None]:
    images = _field(message, "images")
    if not isinstance(images, Mapping):
        raise ProtocolError("images: expected a map of camera name to H×W×3 uint8 image")
    frames = {}
    for name, image in images.items():
        frame = _array(image, f"images[{name!r}]", 3, "u")
        if frame.dtype != np.uint8 or frame.shape[2] != 3:
            raise ProtocolError(f"images[{name!r}]: expected H×W×3 uint8, got {frame.dtype} {frame.shape}")
        frames[_text(name, "camera name")] = frame
    state = _array(_field(message, "state"), "state", 1, "fiu").astype(np.float64)
    stamp = _optional(message, "stamp_ns")
    if stamp is not None and (not isinstance(stamp, int) or isinstance(stamp, bool)):
        raise ProtocolError("stamp_ns: expected an integer")
    rtc = _optional(message, "rtc")
    request = None
    if rtc is not None:
        delay = _field(rtc, "delay_steps")
        if not isinstance(delay, int) or isinstance(delay, bool) or delay < 0:
            raise ProtocolError("rtc.delay_steps: expected a non-negative integer")
        request = RtcRequest(_array(_field(rtc, "committed"), "rtc.committed", 2).astype(np.float64), delay)
    return Observation(frames, state, _text(_field(message, "prompt"), "prompt"), stamp), request


def response_message(result: ChunkResult, infer_ms: float) -> dict[str, Any]:
    return {"actions": np.asarray(result.actions, dtype=np.float64), "action_names": list(result.action_names),
            "dt_s": float(result.dt_s), "state_names": list(result.state_names),
            "state": np.asarray(result.state, dtype=np.float64), "denoising_steps": int(result.denoising_steps),
            "rtc_prefix_steps": int(result.rtc_prefix_steps), "subtask": result.subtask,
            "server_timing": {"infer_ms": float(infer_ms)}}


def parse_response(message: Any, action_names: tuple[str, ...], start_s: float, end_s: float,
                   dt_s: float) -> ChunkResult:
    """A server's response as a chunk in the contract's action order (its action_names, when it sends them,
    must be the contract's; a server that sends none is taken to use the contract's order)."""
    actions = _array(_field(message, "actions"), "actions", 2, "fiu").astype(np.float64)
    if actions.shape[1] != len(action_names) or not np.all(np.isfinite(actions)):
        raise ProtocolError(f"actions: expected finite (H, {len(action_names)}), got {actions.shape}")
    names = _optional(message, "action_names")
    if names is not None:
        names = _texts(names, "action_names")
        if set(names) != set(action_names) or len(names) != len(action_names):
            raise ProtocolError(f"action_names {list(names)[:4]}… are not the contract's")
        actions = actions[:, [names.index(n) for n in action_names]]
    dt = _optional(message, "dt_s")
    if dt is not None and (isinstance(dt, bool) or not isinstance(dt, int | float) or not math.isfinite(dt)
                           or dt <= 0):
        raise ProtocolError(f"dt_s: expected a positive number of seconds, got {dt!r}")
    state_names = _optional(message, "state_names")
    state_names = () if state_names is None else _texts(state_names, "state_names")
    state = _optional(message, "state")
    state = np.zeros(0) if state is None else _array(state, "state", 1, "fiu").astype(np.float64)
    if len(state) != len(state_names):
        raise ProtocolError(f"state: {len(state)} values for {len(state_names)} state_names")
    return ChunkResult(actions, action_names, float(dt or dt_s), state_names, state, start_s, end_s,
                       _count(_optional(message, "denoising_steps"), "denoising_steps"),
                       _count(_optional(message, "rtc_prefix_steps"), "rtc_prefix_steps"),
                       _optional_text(message, "subtask"))


def _texts(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise ProtocolError(f"{name}: expected a list of strings, got {type(value).__name__}")
    return tuple(_text(v, name) for v in value)


def _count(value: Any, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ProtocolError(f"{name}: expected a non-negative integer, got {value!r}")
    return int(value)
