"""bag-to-lerobot: conversion throughput and dataset size per minute of recording.

A synthetic ALOHA recording with three 640×480 rgb8 cameras at 30 Hz (a moving scene with sensor noise, so
that video codecs see what a camera gives, not incompressible noise), joint states at 100 Hz and joint
commands, converted by `wall-oss-ros bag-to-lerobot` (a fresh process, as a user runs it) into LeRobot
datasets at the contract's 50 Hz control rate, once with video (libsvtav1) and once with PNG images.

    python benchmarks/bench_bag_to_lerobot.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

from test.support.bags import write_test_bag
from wall_oss_ros.core.contract import resolve_contract

CAMERAS = ("top", "left_wrist", "right_wrist")
SIZE = (480, 640)  # H, W
CAMERA_HZ = 30.0


def scene(camera: int, t: float) -> np.ndarray:
    """A lit table with two moving objects, seen from one camera, plus sensor noise (σ = 2 grey levels)."""
    h, w = SIZE
    ramp = np.linspace(60, 200, w, dtype=np.float32)[None, :, None] * np.ones((h, 1, 3), np.float32)
    image = ramp * np.array([0.9, 1.0, 0.8 + 0.1 * camera], np.float32)
    x, y = int(w / 2 + 180 * np.sin(0.6 * t + camera)), int(h / 2 + 120 * np.cos(0.4 * t))
    cv2.circle(image, (x, y), 50, (200, 40, 40), -1)
    cv2.rectangle(image, (w - x - 60, h - y - 40), (w - x + 60, h - y + 40), (30, 160, 60), -1)
    noise = np.random.default_rng(round(t * 1e3) + camera).normal(0, 2, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def three_camera_contract(path: Path) -> Path:
    spec = yaml.safe_load(Path(resolve_contract("aloha_bimanual").source).read_text())
    spec["name"] = "aloha_bimanual_3cam"
    spec["cameras"] = [{"name": n, "topic": f"/camera/{n}/image_raw", "transport": "raw", "view": f"{n} view"}
                       for n in CAMERAS]
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def convert(bag: Path, contract: Path, out: Path, images: str) -> dict:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "wall_oss_ros.tools.cli", "bag-to-lerobot", str(bag),
                             "--contract", str(contract), "--out", str(out), "--images", images, "--json"],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"bag-to-lerobot failed ({result.returncode}): {result.stderr[-2000:]}")
    summary = json.loads(result.stdout[result.stdout.index("\n{") + 1:] if not result.stdout.startswith("{")
                         else result.stdout)
    summary["wall_s"] = time.perf_counter() - started
    return summary


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the synthetic recording [s]")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_bag_to_lerobot_"))
    try:
        contract = three_camera_contract(tmp / "contract.yaml")
        bag = tmp / "bag"
        write_test_bag(bag, "mcap", duration_s=args.seconds, camera_hz=CAMERA_HZ, commands=True, size=SIZE,
                       camera_topics=tuple(f"/camera/{n}/image_raw" for n in CAMERAS), pixels=scene)
        bag_bytes = sum(p.stat().st_size for p in bag.rglob("*") if p.is_file())
        minutes = args.seconds / 60
        report: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                        "recording": {"seconds": args.seconds, "cameras": len(CAMERAS), "size": list(SIZE),
                                      "camera_hz": CAMERA_HZ, "bag_mb_per_min": bag_bytes / 1e6 / minutes}}
        for images in ("video", "image"):
            s = convert(bag, contract, tmp / f"ds_{images}", images)
            report[images] = {"frames": s["frames"], "fps": s["fps"], "frames_per_s": s["frames"] / s["wall_s"],
                              "frames_per_s_in_tool": s["frames_per_s"],
                              "x_real_time": s["frames"] / s["wall_s"] / s["fps"],
                              "dataset_mb_per_min": s["bytes"] / 1e6 / minutes,
                              "dataset_to_bag_size": s["bytes"] / bag_bytes}
        report["video_speedup_over_png"] = report["video"]["frames_per_s"] / report["image"]["frames_per_s"]
        report["png_to_video_size"] = report["image"]["dataset_mb_per_min"] / report["video"]["dataset_mb_per_min"]
        print(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
