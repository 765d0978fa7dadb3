"""A LeRobot dataset as the runs `eval-openloop` scores: one per episode, its frames as observations and its
`action` column as the recorded trajectory, so a model is scored on the data it was trained on exactly as on
the bag the data came from (bag-to-lerobot writes actions in the contract's layout, absolute)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wall_oss_ros.core.contract import RobotContract
from wall_oss_ros.core.observation import Snapshot, state_names
from wall_oss_ros.tools.bag_timing import RecordingAudit
from wall_oss_ros.tools.dataset_stream import IMAGE_PREFIX
from wall_oss_ros.tools.eval_openloop import RecordedRun

EPISODE_SPACING_S = 10.0  # between episodes on the runs' common time axis: no chunk reaches into the next


def is_dataset(path: Path) -> bool:
    return (Path(path) / "meta" / "info.json").is_file()


def _check_layout(root: Path, header: dict, contract: RobotContract) -> None:
    """The dataset's features must be the contract's: the same cameras, state and action names."""
    feats = header["features"]
    problems = []
    for key, expected in (("action", list(contract.action_names)), ("observation.state", list(state_names(contract)))):
        names = (feats.get(key) or {}).get("names")
        if names != expected:
            problems.append(f"{key} names {names[:4] if names else names}… are not the contract's {expected[:4]}…")
    cameras = sorted(k.removeprefix(IMAGE_PREFIX) for k in feats if k.startswith(IMAGE_PREFIX))
    if cameras != sorted(c.name for c in contract.cameras):
        problems.append(f"cameras {cameras} are not the contract's {sorted(c.name for c in contract.cameras)}")
    if problems:
        raise ValueError(f"{root}: the dataset does not fit the {contract.name} contract: {'; '.join(problems)}")
    if round(1.0 / contract.dt_s) != header["fps"]:
        raise ValueError(f"{root}: the dataset runs at {header['fps']} fps, the {contract.name} contract at "
                         f"{1.0 / contract.dt_s:.3f} Hz")


def read_dataset_runs(root: Path, contract: RobotContract, every: int = 1,
                      max_observations: int | None = None) -> list[RecordedRun]:
    """Every k-th frame of each episode as an observation and all frames' actions as ground truth; times are the
    source bag's (episode start + timestamp) when the dataset records them, else episodes spaced on one axis."""
    from wall_oss_ros.tools.data_env import read_dataset

    records = read_dataset(root)
    _, header = next(records)
    _check_layout(root, header, contract)
    extra = header.get("wall_oss_ros") or {}
    starts = [t for source in extra.get("sources", []) for t in source.get("episode_start_s", [])]
    names = state_names(contract)
    cameras = [c.name for c in contract.cameras]
    episodes: dict[int, dict] = {}
    offset, last_t = 0.0, 0.0
    selected = 0
    for arrays, meta in records:
        e = meta["episode_index"]
        if e not in episodes:  # the recording's own times where bag-to-lerobot wrote them, else one axis
            offset = starts[e] if len(starts) == header["episodes"] else (
                last_t + EPISODE_SPACING_S if episodes else 0.0)
            episodes[e] = {"snapshots": [], "times": [], "actions": [], "task": meta["task"]}
        ep = episodes[e]
        t = offset + meta["frame_index"] / header["fps"]
        last_t = t
        ep["times"].append(t)
        ep["actions"].append(arrays["action"].astype(float))
        if meta["frame_index"] % every == 0 and (max_observations is None or selected < max_observations):
            frames = {name: arrays[IMAGE_PREFIX + name] for name in cameras}
            ep["snapshots"].append(Snapshot(t, frames, names, arrays["observation.state"].astype(float)))
            selected += 1
    if not episodes:
        raise ValueError(f"{root}: the dataset has no frame")
    return [RecordedRun(ep["snapshots"], ep["task"], "dataset actions", np.array(ep["times"]),
                        np.stack(ep["actions"]), RecordingAudit()) for ep in episodes.values() if ep["snapshots"]]
