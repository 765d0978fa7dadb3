"""A LeRobot dataset's frames, read by LeRobot's own `LeRobotDataset`, streamed to another process.

Runs in the data environment (tools/data_env.py); `eval-openloop DATASET` reads the stream from the project's
environment, where `lerobot-dataset` cannot be installed beside the policy's dependencies. Each record is
an 8-byte little-endian length and a safetensors blob (arrays; scalars and text in its metadata): no pickle.
The first record carries the dataset's info and this project's contract file, if any.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

IMAGE_PREFIX = "observation.images."
LENGTH = struct.Struct("<Q")


def encode_record(arrays: dict[str, np.ndarray], meta: dict[str, object]) -> bytes:
    from safetensors.numpy import save

    blob = save({k: np.ascontiguousarray(v) for k, v in arrays.items()}, metadata={"json": json.dumps(meta)})
    return LENGTH.pack(len(blob)) + blob


def decode_record(blob: bytes) -> tuple[dict[str, np.ndarray], dict]:
    from safetensors.numpy import load

    (header_len,) = LENGTH.unpack_from(blob)
    header = json.loads(blob[8:8 + header_len])
    return load(blob), json.loads(header.get("__metadata__", {}).get("json", "{}"))


def frames(root: Path, every: int = 1, max_frames: int | None = None) -> Iterator[tuple[dict, dict]]:
    """(arrays, meta) of the header, then of every k-th frame: images H×W×3 uint8, state and action float32."""
    from ledataset.datasets.lerobot_dataset import LeRobotDataset

    root = Path(root)
    if not (root / "meta" / "info.json").is_file():  # else LeRobot would look for it on the Hub
        raise FileNotFoundError(f"{root}: no meta/info.json, not a LeRobot dataset")
    dataset = LeRobotDataset(f"local/{root.name}", root=root, video_backend="pyav")
    extra = root / "meta" / "wall_oss_ros.json"
    yield {}, {"fps": dataset.meta.fps, "frames": len(dataset), "episodes": dataset.num_episodes,
               "features": {k: {"dtype": v["dtype"], "shape": list(v["shape"]), "names": v.get("names")}
                            for k, v in dataset.meta.features.items()},
               "robot_type": dataset.meta.info.get("robot_type"),
               "wall_oss_ros": json.loads(extra.read_text()) if extra.is_file() else None}
    for count, index in enumerate(range(0, len(dataset), every), start=1):
        item = dataset[index]
        arrays = {}
        for key, value in item.items():
            if key.startswith(IMAGE_PREFIX):  # LeRobot gives C×H×W floats in [0, 1]
                arrays[key] = (value.permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255).astype(np.uint8)
            elif key in ("observation.state", "action"):
                arrays[key] = value.numpy().astype(np.float32)
        yield arrays, {"index": int(item["index"]), "episode_index": int(item["episode_index"]),
                       "frame_index": int(item["frame_index"]), "timestamp": float(item["timestamp"]),
                       "task": str(item["task"])}
        if max_frames is not None and count >= max_frames:
            break


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wall-oss-ros dataset-stream", description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--max-frames", type=int, default=None)
    args = parser.parse_args(argv)
    out = sys.stdout.buffer
    try:
        for arrays, meta in frames(args.root, args.every, args.max_frames):
            out.write(encode_record(arrays, meta))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # whatever LeRobot raises on a damaged dataset, said in one line
        print(f"error: {args.root}: not a readable LeRobot dataset ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
