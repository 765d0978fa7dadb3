"""Image messages → RGB pixels, duck-typed on the message fields and free of rclpy, so that frames read
from a bag by `rosbags` decode the same way in the node, in `eval-openloop` and in `bag-to-lerobot`."""

from __future__ import annotations

import numpy as np

SUPPORTED_ENCODINGS = ("rgb8", "bgr8", "mono8")


class ConversionError(ValueError):
    """A message that cannot be used; the text says which field and why."""


def decode_image(msg: object) -> np.ndarray:
    """H×W×3 uint8 RGB from a raw (has `encoding`) or compressed image; unsupported encodings and corrupt
    data raise ConversionError."""
    if not hasattr(msg, "encoding"):
        import cv2

        data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if bgr is None:
            raise ConversionError(f"CompressedImage ({msg.format or 'no format'}): data does not decode")
        return bgr[:, :, ::-1].copy()
    if msg.encoding not in SUPPORTED_ENCODINGS:
        raise ConversionError(f"Image encoding {msg.encoding!r} is not supported ({', '.join(SUPPORTED_ENCODINGS)})")
    channels = 1 if msg.encoding == "mono8" else 3
    if msg.height == 0 or msg.width == 0 or msg.step < msg.width * channels:
        raise ConversionError(f"Image {msg.width}x{msg.height} with step {msg.step} is inconsistent")
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if data.size < msg.step * msg.height:
        raise ConversionError(f"Image data has {data.size} bytes, {msg.step * msg.height} expected")
    rows = data[: msg.step * msg.height].reshape(msg.height, msg.step)[:, : msg.width * channels]
    pixels = rows.reshape(msg.height, msg.width, channels)
    if msg.encoding == "mono8":
        return np.repeat(pixels, 3, axis=2)
    return pixels[:, :, ::-1].copy() if msg.encoding == "bgr8" else pixels.copy()
