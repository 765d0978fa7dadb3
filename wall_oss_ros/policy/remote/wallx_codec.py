"""The wall-x policy server's wire format: msgpack with numpy arrays as msgpack-numpy writes them,
{b"nd": True, b"type": dtype string, b"kind": b"", b"shape", b"data"} (scalars {b"nd": False, b"type",
b"data"}).

Byte for byte what `msgpack_numpy.packb` writes for numeric arrays and scalars (the tests compare them).
Written here, not decoded with msgpack-numpy: its decoder unpickles any array whose kind is b"O", which a
frame from the network must never be able to ask for. So decoding takes numeric and bool dtypes only
(kind b""; object and structured arrays are refused), shapes that match their data, and frames within the
same size limit as openpi's. Every malformed frame raises ProtocolError.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from wall_oss_ros.policy.remote.openpi_codec import ALLOWED_KINDS, ProtocolError, decode_frame, wire_array, wire_dtype


def _pack(obj: Any) -> Any:
    if isinstance(obj, np.ndarray | np.generic) and obj.dtype.kind not in ALLOWED_KINDS:
        raise ProtocolError(f"unsupported dtype {obj.dtype}: numeric and bool arrays only")
    if isinstance(obj, np.ndarray):
        return {b"nd": True, b"type": obj.dtype.str, b"kind": b"", b"shape": obj.shape,
                b"data": np.ascontiguousarray(obj).tobytes()}
    if isinstance(obj, np.generic):
        return {b"nd": False, b"type": obj.dtype.str, b"data": obj.tobytes()}
    return obj


def _unpack(obj: dict) -> Any:
    if b"nd" not in obj:
        if b"complex" in obj:
            raise ProtocolError("complex numbers are not part of the wall-x messages")
        return obj
    kind = obj.get(b"kind", b"")
    if obj[b"nd"] is True and kind != b"":
        raise ProtocolError(f"array kind {kind!r} refused: numeric and bool arrays only (never pickled objects)")
    dtype, data = wire_dtype(obj.get(b"type")), obj.get(b"data")
    if not isinstance(data, bytes):
        raise ProtocolError("an array or scalar needs bytes data")
    if obj[b"nd"] is not True:
        if len(data) != dtype.itemsize:
            raise ProtocolError(f"a {dtype} scalar needs {dtype.itemsize} bytes, got {len(data)}")
        return np.frombuffer(data, dtype=dtype)[0]
    return wire_array(data, dtype, obj.get(b"shape"))


def packb(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_pack)


def unpackb(frame: bytes) -> Any:
    """Decode one frame; ProtocolError for anything malformed or too large."""
    return decode_frame(frame, _unpack)
