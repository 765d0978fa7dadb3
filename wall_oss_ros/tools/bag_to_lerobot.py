"""`wall-oss-ros bag-to-lerobot BAG... --contract C --out DIR`: recorded demonstrations → a LeRobot dataset
(the v3 layout, written by LeRobot's own `LeRobotDataset`) to fine-tune on.

Frames are the observations `policy_node` would have computed from (bag_observations.py), on the contract's
control grid (control_grid.py). Features: `observation.images.<camera>` (video, or lossless PNG images),
`observation.state` (the contract's proprioception), `action` (the recorded target in the contract's action
layout: joint positions, or xyz + 6-D rotation of an IK arm), the task from /instruction or --task.
Actions are absolute, as LeRobot stores them; a relative contract's chunks are taken relative to the state
at their first frame by the training side (docs/how-to/fine-tune-on-your-robot.md). LeRobot computes the
normalisation statistics (meta/stats.json) when the dataset is finalised.

Runs where `lerobot-dataset` is installed (the data environment: `.venv-data`, see tools/data_env.py). The
dataset is written into a hidden directory beside OUT and renamed into place only once complete, so a failed
conversion leaves no dataset behind.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from wall_oss_ros.core.contract import Representation, RobotContract
from wall_oss_ros.core.observation import state_names
from wall_oss_ros.tools.bag_observations import RecordingStream
from wall_oss_ros.tools.control_grid import SPLITS, ControlGrid, GridFrame

IMAGE_MODES = ("video", "image")
CONTRACT_FILE = "meta/wall_oss_ros.json"  # the contract, representation and sources, beside LeRobot's meta/
IMAGE_WRITER_THREADS = 4  # PNG mode: LeRobot's writer threads (compression releases the GIL)
MAX_DROPPED_SHARE = 0.01  # a topic losing more of its messages (out of order, not finite) is refused


def control_fps(contract: RobotContract) -> int:
    """LeRobot's integer fps for the contract's step; a step that is no whole rate cannot be a dataset's."""
    fps = round(1.0 / contract.dt_s)
    if abs(1.0 / contract.dt_s - fps) > 1e-3:
        raise ValueError(f"contract {contract.name}: dt_s {contract.dt_s} s is not a whole rate (LeRobot's fps is "
                         f"an integer)")
    return fps


def features(contract: RobotContract, sizes: dict[str, tuple[int, int]], image_mode: str) -> dict:
    out = {f"observation.images.{name}": {"dtype": image_mode, "shape": (h, w, 3),
                                          "names": ["height", "width", "channels"]}
           for name, (h, w) in sizes.items()}
    names = list(state_names(contract))
    out["observation.state"] = {"dtype": "float32", "shape": (len(names),), "names": names}
    out["action"] = {"dtype": "float32", "shape": (len(contract.action_names),), "names": list(contract.action_names)}
    return out


def contract_record(contract: RobotContract, bags: list[Path], counts: list[dict]) -> dict:
    """What training and evaluation need to read the actions: layout, representation, rotation frame, sources."""
    return {"contract": contract.name, "dt_s": contract.dt_s, "action_names": list(contract.action_names),
            "state_names": list(state_names(contract)),
            "actions_stored": "absolute",
            "groups": {g.name: {"kind": g.kind.value, "representation": g.representation.value,
                                "rotation_frame": g.rotation_frame, "action_names": list(g.action_names)}
                       for g in contract.groups},
            "relative_groups": [g.name for g in contract.groups if g.representation is Representation.RELATIVE],
            "cameras": {c.name: {"topic": c.topic, "view": c.view} for c in contract.cameras},
            "sources": [{"bag": str(b), **c} for b, c in zip(bags, counts, strict=True)]}


def _decoded(frame: GridFrame, cache: dict[int, dict[str, np.ndarray]], topics: dict[str, str]) -> dict:
    from wall_oss_ros.ros.image_codec import ConversionError, decode_image

    key = id(frame.snapshot)
    if key not in cache:  # a camera slower than the grid repeats its observation: decoded once
        cache.clear()
        images = {}
        for name, msg in frame.snapshot.frames.items():
            try:
                images[name] = decode_image(msg)
            except ConversionError as exc:
                raise ValueError(f"{topics.get(name, name)}, frame stamped {frame.snapshot.t_obs:.3f} s: "
                                 f"{exc}") from exc
        cache[key] = images
    return cache[key]


def convert(bags: list[Path], contract_ref: str, out: Path, repo_id: str = "", split: str = "bag", task: str = "",
            image_mode: str = "video", vcodec: str = "libsvtav1", sync_tolerance_s: float = 0.05,
            max_observation_age_s: float = 0.25, time_source: str = "header", max_clock_offset_s: float = 0.1,
            overwrite: bool = False, progress: bool = True) -> dict:
    from ledataset.datasets.lerobot_dataset import LeRobotDataset
    from tqdm import tqdm

    from wall_oss_ros.core.contract import resolve_contract

    if image_mode not in IMAGE_MODES:
        raise ValueError(f"images must be one of {IMAGE_MODES}, got {image_mode!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not bags:
        raise ValueError("no bag given")
    contract = resolve_contract(contract_ref)
    fps = control_fps(contract)
    out = Path(out).resolve()
    if out.exists() and not overwrite:
        raise ValueError(f"{out} exists: choose another --out or pass --overwrite")
    partial = out.parent / f".{out.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)  # a conversion that was killed left it
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    dataset, sizes, counts = None, {}, []
    try:
        for bag in bags:
            stream = RecordingStream(Path(bag), contract, sync_tolerance_s, time_source, max_clock_offset_s)
            grid = ControlGrid(stream, fps, split, task, max_observation_age_s)
            bar = tqdm(desc=f"{Path(bag).name}", unit="frame", disable=not progress)
            cache: dict[int, dict[str, np.ndarray]] = {}
            episode, frames_in_episode, episodes, starts = None, 0, 0, []
            for frame in grid:
                images = _decoded(frame, cache, stream.camera_topics)
                if dataset is None:
                    sizes = {name: images[name].shape[:2] for name in (c.name for c in contract.cameras)}
                    dataset = LeRobotDataset.create(repo_id or f"local/{out.name}", fps,
                                                    features(contract, sizes, image_mode), root=partial,
                                                    robot_type=contract.name, use_videos=image_mode == "video",
                                                    vcodec=vcodec, streaming_encoding=image_mode == "video",
                                                    image_writer_threads=IMAGE_WRITER_THREADS
                                                    if image_mode == "image" else 0)
                for name, pixels in images.items():
                    if pixels.shape[:2] != sizes[name]:
                        raise ValueError(f"{bag}: {stream.camera_topics[name]} frames are {pixels.shape[1]}x"
                                         f"{pixels.shape[0]}, the dataset's are {sizes[name][1]}x{sizes[name][0]}")
                if frame.episode != episode and frames_in_episode:
                    dataset.save_episode()
                    episodes += 1
                    frames_in_episode = 0
                if not frames_in_episode:
                    starts.append(frame.t)
                episode = frame.episode
                dataset.add_frame({**{f"observation.images.{n}": p for n, p in images.items()},
                                   "observation.state": frame.snapshot.state.astype(np.float32),
                                   "action": frame.action.astype(np.float32), "task": frame.task})
                frames_in_episode += 1
                bar.update()
            bar.close()
            stream.finish()
            _refuse_dropped(bag, stream)
            if frames_in_episode:
                dataset.save_episode()
                episodes += 1
            if not stream.observations:
                raise ValueError(stream.no_observation_reason())
            if not episodes:
                raise ValueError(f"{bag}: no frame to write ({_why_none(grid, stream)})")
            grid_counts = {k: v for k, v in asdict(grid.counts).items() if k != "episodes"}
            counts.append({"episodes": episodes, "episode_start_s": starts, **grid_counts,
                           "observations": stream.observations, "recording": stream.audit.summary()})
        dataset.finalize()
        (partial / CONTRACT_FILE).write_text(json.dumps(contract_record(contract, bags, counts), indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        partial.rename(out)
    except BaseException:
        if dataset is not None:  # its encoder and writer threads stop before their directory goes
            with contextlib.suppress(Exception):
                dataset.stop_image_writer()
                dataset.finalize()
        shutil.rmtree(partial, ignore_errors=True)
        raise
    elapsed = time.perf_counter() - started
    frames = sum(c["frames"] for c in counts)
    return {"out": str(out), "episodes": sum(c["episodes"] for c in counts), "frames": frames, "fps": fps,
            "cameras": {n: list(s) for n, s in sizes.items()}, "seconds": elapsed,
            "frames_per_s": frames / elapsed if elapsed > 0 else None,
            "bytes": sum(p.stat().st_size for p in out.rglob("*") if p.is_file()), "sources": counts}


def _refuse_dropped(bag: Path, stream: RecordingStream) -> None:
    """Out-of-order or non-finite messages are dropped (bag_timing.py); more than a few means a broken recording,
    not a dataset to train on."""
    bad = [f"{topic}: {a.dropped} of {a.messages} dropped ({a.out_of_order} out of order, {a.not_finite} not "
           f"finite)" for topic, a in sorted(stream.audit.topics.items())
           if a.messages and a.dropped / a.messages > MAX_DROPPED_SHARE]
    if bad:
        raise ValueError(f"{bag}: {'; '.join(bad)}: fix the recording, or its stamps (--time-source receive)")


def _why_none(grid: ControlGrid, stream: RecordingStream) -> str:
    c = grid.counts
    if c.untasked_observations == stream.observations:
        return "no task: the bag has no non-empty /instruction; pass --task"
    return (f"{stream.observations} observations, {c.before_targets + c.after_targets} grid times outside the "
            f"recorded {stream.truth_source}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wall-oss-ros bag-to-lerobot", description=__doc__.split("\n\n")[0])
    p.add_argument("bags", nargs="+", type=Path, help="rosbag2 directories or .mcap files, one or more episodes each")
    p.add_argument("--contract", required=True, help="robot contract: name or YAML path")
    p.add_argument("--out", required=True, type=Path, help="dataset directory to create")
    p.add_argument("--repo-id", default="", help="the dataset's Hub name (default: local/<out name>)")
    p.add_argument("--split", choices=SPLITS, default="bag",
                   help="episodes: one per bag (and per gap), or one per /instruction as well")
    p.add_argument("--task", default="", help="task text of every frame (default: the bag's /instruction)")
    p.add_argument("--images", choices=IMAGE_MODES, default="video",
                   help="video (LeRobot's default, lossy) or PNG images (lossless, larger)")
    p.add_argument("--vcodec", default="libsvtav1", help="video codec (LeRobot's: libsvtav1, h264, hevc)")
    p.add_argument("--sync-tolerance-s", type=float, default=0.05, help="as policy_node's [s]")
    p.add_argument("--max-observation-age-s", type=float, default=0.25,
                   help="a newest observation older than this at a grid time ends the episode (camera gap) [s]")
    p.add_argument("--time-source", choices=["header", "receive"], default="header")
    p.add_argument("--max-clock-offset-s", type=float, default=0.1,
                   help="header stamps further than this from the receive times are refused [s]")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through convert(), which removes its partial dataset


def main(argv: list[str] | None = None) -> int:
    import signal

    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        summary = convert(args.bags, args.contract, args.out, args.repo_id, args.split, args.task, args.images,
                          args.vcodec, args.sync_tolerance_s, args.max_observation_age_s, args.time_source,
                          args.max_clock_offset_s, args.overwrite, progress=not args.json)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['episodes']} episodes, {summary['frames']} frames at {summary['fps']} fps "
              f"({summary['frames_per_s']:.1f} frames/s, {summary['bytes'] / 1e6:.1f} MB): {summary['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
