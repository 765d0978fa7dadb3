"""openpi's wire format: msgpack, numpy arrays as maps {b"__ndarray__": True, b"data", b"dtype", b"shape"}
(numpy scalars as {b"__npgeneric__": True, b"data", b"dtype"}).

Byte for byte what `openpi_client.msgpack_numpy` writes (the tests compare them), written here because
openpi-client 0.1.2 requires numpy < 2. Decoding is stricter than openpi's, since frames come from the
network: numeric and bool dtypes only (never object arrays, so nothing is ever unpickled), shapes that
match their data, frames and arrays within size limits. Every malformed frame raises ProtocolError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np

MAX_FRAME_BYTES = 256 * 1024 * 1024  # one request or response (three 448² RGB frames are 1.8 MB)
ALLOWED_KINDS = "biuf"  # bool, signed and unsigned integers, floats


class ProtocolError(ValueError):
    """A frame that is not valid openpi msgpack (or asks for more than the limits allow)."""


def _pack(obj: Any) -> Any:
    if isinstance(obj, np.ndarray | np.generic) and obj.dtype.kind not in ALLOWED_KINDS:
        raise ProtocolError(f"unsupported dtype {obj.dtype}: numeric and bool arrays only")
    if isinstance(obj, np.ndarray):
        return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": obj.shape}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    return obj


def wire_dtype(value: Any) -> np.dtype:
    if not isinstance(value, str | bytes):
        raise ProtocolError(f"dtype must be a string, got {type(value).__name__}")
    try:
        dtype = np.dtype(value if isinstance(value, str) else value.decode("ascii"))
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"unknown dtype {value!r}") from exc
    if dtype.kind not in ALLOWED_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise ProtocolError(f"unsupported dtype {dtype}: numeric and bool arrays only")
    return dtype


def wire_array(data: Any, dtype: np.dtype, shape: Any) -> np.ndarray:
    """An array from its bytes, checked: bytes data, a shape of non-negative integers, sizes that agree."""
    if not isinstance(data, bytes) or not isinstance(shape, list | tuple) or \
            not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise ProtocolError("an array needs bytes data and a shape of non-negative integers")
    count = int(np.prod(shape, dtype=object)) if shape else 1
    if count * dtype.itemsize != len(data):
        raise ProtocolError(f"array of shape {tuple(shape)} and dtype {dtype} needs {count * dtype.itemsize} "
                            f"bytes, got {len(data)}")
    return np.frombuffer(data, dtype=dtype).reshape(tuple(shape)).copy()  # writable, owning its memory


def _unpack(obj: dict) -> Any:
    if b"__ndarray__" in obj:
        return wire_array(obj.get(b"data"), wire_dtype(obj.get(b"dtype")), obj.get(b"shape"))
    if b"__npgeneric__" in obj:
        dtype = wire_dtype(obj.get(b"dtype"))
        try:
            return dtype.type(obj.get(b"data"))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ProtocolError(f"bad {dtype} scalar") from exc
    return obj


def packb(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_pack)


def unpackb(frame: bytes) -> Any:
    """Decode one frame; ProtocolError for anything malformed or too large."""
    return decode_frame(frame, _unpack)


def decode_frame(frame: bytes, object_hook: Callable[[dict], Any]) -> Any:
    """A msgpack frame decoded with object_hook for its maps, within MAX_FRAME_BYTES; ProtocolError for
    anything malformed (shared by the servers' codecs, which differ only in how an array is written)."""
    if not isinstance(frame, bytes | bytearray | memoryview):
        raise ProtocolError(f"expected a binary frame, got {type(frame).__name__}")
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(frame)} bytes over the limit of {MAX_FRAME_BYTES}")
    try:
        return msgpack.unpackb(frame, object_hook=object_hook, strict_map_key=False)
    except ProtocolError:
        raise
    except (msgpack.UnpackException, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise ProtocolError(f"malformed msgpack frame: {exc}") from exc
