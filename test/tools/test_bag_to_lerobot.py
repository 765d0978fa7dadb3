"""bag-to-lerobot: rosbags → LeRobot datasets written and read back by LeRobot's own package (in the data
environment, .venv-data), sample parity with the live synchroniser, the eval-openloop round trip, bad bags."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test.support.bags import write_test_bag
from test.support.robots import contract
from wall_oss_ros.ros.image_codec import decode_image
from wall_oss_ros.tools.bag_observations import RecordingStream
from wall_oss_ros.tools.data_env import data_python, read_dataset
from wall_oss_ros.tools.dataset_runs import read_dataset_runs
from wall_oss_ros.tools.eval_openloop import evaluate, read_recording
from wall_oss_ros.tools.openloop_metrics import EvaluatedChunk, compute_metrics

C = contract("aloha_bimanual")
FPS = 50


def convert(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wall_oss_ros.tools.cli", "bag-to-lerobot", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


def frames_of(root: Path) -> tuple[dict, list[tuple[dict, dict]]]:
    records = read_dataset(root)
    _, header = next(records)
    return header, list(records)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A 25 Hz camera (two grid frames per observation), commands, two instructions: one dataset per split."""
    tmp = tmp_path_factory.mktemp("lerobot")
    bag = tmp / "bag"
    write_test_bag(bag, commands=True, camera_hz=25.0, duration_s=2.0, later_instructions=((1.0, "lift the peg"),))
    out = {}
    for split in ("bag", "instruction"):
        result = convert(bag, "--contract", "aloha_bimanual", "--out", tmp / f"ds_{split}", "--split", split,
                         "--images", "image", "--json")
        assert result.returncode == 0, result.stderr
        out[split] = (tmp / f"ds_{split}", json.loads(result.stdout))
    return bag, out


def test_the_dataset_is_lerobot_v3_with_the_contracts_features_and_statistics(converted):
    _, out = converted
    root, summary = out["bag"]
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == FPS and info["robot_type"] == C.name
    assert info["features"]["action"]["names"] == list(C.action_names)
    assert info["features"]["observation.images.top"]["dtype"] == "image"
    stats = json.loads((root / "meta" / "stats.json").read_text())
    for key in ("action", "observation.state"):
        assert {"mean", "std", "min", "max"} <= set(stats[key]) and len(stats[key]["mean"]) == 14
    header, records = frames_of(root)
    assert header["frames"] == summary["frames"] == len(records) and header["episodes"] == 1
    assert {m["task"] for _, m in records} == {"insert the peg", "lift the peg"}
    action_stats = np.stack([a["action"] for a, _ in records])
    np.testing.assert_allclose(stats["action"]["mean"], action_stats.mean(axis=0), atol=1e-5)
    assert not (root.parent / f".{root.name}.partial").exists()


def test_lerobot_loads_action_chunks_on_the_control_grid(converted):
    """Training reads chunks with delta_timestamps; LeRobot refuses timestamps off the 1/fps grid."""
    _, out = converted
    script = ("import sys; from ledataset.datasets.lerobot_dataset import LeRobotDataset as D\n"
              f"d = D('local/x', root=sys.argv[1], video_backend='pyav', delta_timestamps={{'action': "
              f"[k / {FPS} for k in range(32)]}})\n"
              "import json; item = d[3]\n"
              "print(json.dumps([list(item['action'].shape), int(item['action_is_pad'].sum()), len(d)]))")
    result = subprocess.run([str(data_python()), "-c", script, str(out["bag"][0])], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    shape, padded, frames = json.loads(result.stdout.strip().splitlines()[-1])
    assert shape == [32, 14] and padded == 0 and frames == out["bag"][1]["frames"]


def test_samples_are_what_the_live_synchroniser_formed_at_each_grid_time(converted):
    bag, out = converted
    root, summary = out["bag"]
    stream = RecordingStream(bag, C)
    snapshots = list(stream)
    stream.finish()
    start = summary["sources"][0]["episode_start_s"][0]
    _, records = frames_of(root)
    used = set()
    for arrays, meta in records:
        t = start + meta["frame_index"] / FPS
        expected = [s for s in snapshots if s.t_obs <= t + 1e-3 / FPS][-1]  # the newest observation at t
        used.add(expected.t_obs)
        np.testing.assert_array_equal(arrays["observation.images.top"], decode_image(expected.frames["top"]))
        np.testing.assert_allclose(arrays["observation.state"], expected.state, rtol=1e-6, atol=1e-6)
    assert len(records) >= 2 * len(used) - 2  # a 25 Hz camera fills two 50 Hz frames per observation


def test_episodes_split_by_instruction(converted):
    _, out = converted
    header, records = frames_of(out["instruction"][0])
    assert header["episodes"] == 2
    tasks = {m["episode_index"]: m["task"] for _, m in records}
    assert tasks == {0: "insert the peg", 1: "lift the peg"}
    assert len(records) == out["bag"][1]["frames"]


def moving_stripes(_camera: int, t: float) -> np.ndarray:
    """A smooth pattern that moves fast (a codec keeps it; each grid time's frame differs from the others)."""
    y, x = np.mgrid[0:96, 0:128].astype(np.float32)
    phase = 2 * np.pi * (x / 48 + y / 96 - 4 * t)
    image = np.stack([128 + 90 * np.sin(phase), 128 + 90 * np.cos(phase), 64 + 32 * np.sin(phase / 2)], axis=-1)
    return image.round().astype(np.uint8)


def test_video_frames_decode_through_lerobot_to_the_observation_of_their_grid_time(tmp_path):
    """The default images mode: LeRobot's own reader decodes each frame near the recorded image of its grid time
    and far from that of another time; nothing is left of the PNG path (no images/ directory)."""
    bag = tmp_path / "bag"
    write_test_bag(bag, commands=True, camera_hz=25.0, duration_s=1.0, pixels=moving_stripes)
    result = convert(bag, "--contract", "aloha_bimanual", "--out", tmp_path / "ds", "--json")
    assert result.returncode == 0, result.stderr
    root, start = tmp_path / "ds", json.loads(result.stdout)["sources"][0]["episode_start_s"][0]
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["features"]["observation.images.top"]["dtype"] == "video"
    assert list((root / "videos").rglob("*.mp4")) and not (root / "images").exists()
    stream = RecordingStream(bag, C)
    snapshots = list(stream)
    stream.finish()
    _, records = frames_of(root)
    assert len(records) >= 40
    for arrays, meta in records:
        t = start + meta["frame_index"] / FPS
        k = max(i for i, s in enumerate(snapshots) if s.t_obs <= t + 1e-3 / FPS)
        decoded = arrays["observation.images.top"].astype(float)
        error = np.abs(decoded - decode_image(snapshots[k].frames["top"])).mean()
        other = snapshots[(k + 3) % len(snapshots)]  # 0.12 s away: a quarter turn of the pattern
        assert error < 8.0 < np.abs(decoded - decode_image(other.frames["top"])).mean() / 3


def test_a_model_scores_the_same_on_the_dataset_as_on_its_bag(tmp_path, tiny_checkpoint):
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    bag = tmp_path / "bag"
    write_test_bag(bag, commands=True, camera_hz=50.0, duration_s=1.2)
    result = convert(bag, "--contract", "aloha_bimanual", "--out", tmp_path / "ds", "--images", "image", "--json")
    assert result.returncode == 0, result.stderr
    start = json.loads(result.stdout)["sources"][0]["episode_start_s"][0]
    (run,) = read_dataset_runs(tmp_path / "ds", C)
    end = run.truth_times[-1]
    assert run.snapshots[0].t_obs == pytest.approx(start)  # the bag's own time axis
    from_bag = read_recording(bag, C)
    # The same observations (the dataset's first frame is its first grid time with a recorded target), on the
    # dataset's grid times: the noise is drawn from the stamp to the nanosecond, the grid is within a µs of it.
    same = []
    for snap in (s for s in from_bag.snapshots if s.t_obs >= start - 1e-6):
        t = min((s.t_obs for s in run.snapshots), key=lambda t: abs(t - snap.t_obs))
        assert abs(t - snap.t_obs) < 1e-6
        same.append(dataclasses.replace(snap, t_obs=t))
    from_bag = dataclasses.replace(from_bag, snapshots=same)
    backend = WallOssBackend(tiny_checkpoint, C, device="cpu", seed=3)
    on_dataset, _ = evaluate(run, backend, C, progress=False)
    on_bag, _ = evaluate(from_bag, WallOssBackend(tiny_checkpoint, C, device="cpu", seed=3), C, progress=False)
    assert len(on_bag) == len(on_dataset) >= 50

    def inside_the_episode(chunks: list[EvaluatedChunk]) -> list[EvaluatedChunk]:
        """The ground truth the dataset holds: its frames end with the episode (the last one left out on both
        sides, where float stamps decide whether a step falls on it)."""
        out = []
        for c in chunks:
            steps = c.t_obs + C.dt_s * np.arange(len(c.truth))
            out.append(EvaluatedChunk(c.t_obs, c.predicted, np.where((steps < end - 1e-6)[:, None], c.truth, np.nan)))
        return out

    a = compute_metrics(inside_the_episode(on_bag), C.action_names, C.dt_s)
    b = compute_metrics(inside_the_episode(on_dataset), C.action_names, C.dt_s)
    assert a["mae_mean"] > 0.01  # the tiny model is wrong: its error is what is compared
    assert b["mae_mean"] == pytest.approx(a["mae_mean"], rel=1e-4)
    for name in C.action_names:
        assert b["rmse"][name] == pytest.approx(a["rmse"][name], rel=1e-3, abs=1e-6)


@pytest.mark.parametrize("damage", ["missing_topic", "truncated", "out_of_order", "encoding", "no_task"])
def test_bad_bags_give_a_clear_error_and_no_dataset(tmp_path, damage):
    bag = tmp_path / "bag"
    options = {"missing_topic": {}, "truncated": {}, "out_of_order": {"swap_joint_stamps_every": 5},
               "encoding": {"image_encoding": "rgb16"}, "no_task": {"instruction": ""}}[damage]
    write_test_bag(bag, commands=True, duration_s=1.0, **options)
    if damage == "truncated":
        (mcap,) = bag.glob("*.mcap")
        mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    args = [bag, "--contract", "aloha_bimanual" if damage != "missing_topic" else "bimanual_ee",  # other cameras
            "--out", tmp_path / "ds"]
    result = convert(*args)
    assert result.returncode == 2, result.stdout
    expected = {"missing_topic": "needs topics", "truncated": "cannot read the bag", "out_of_order": "out of order",
                "encoding": "not supported", "no_task": "no task"}[damage]
    assert expected in result.stderr, result.stderr
    assert list(tmp_path.glob("*ds*")) == []  # neither a dataset nor its partial directory


def test_an_existing_dataset_is_not_overwritten_unless_asked(tmp_path):
    bag = tmp_path / "bag"
    write_test_bag(bag, commands=True, duration_s=0.6, camera_hz=50.0)
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "keep").write_text("x")
    result = convert(bag, "--contract", "aloha_bimanual", "--out", tmp_path / "ds")
    assert result.returncode == 2 and "exists" in result.stderr
    assert (tmp_path / "ds" / "keep").exists()
    result = convert(bag, "--contract", "aloha_bimanual", "--out", tmp_path / "ds", "--overwrite")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "ds" / "keep").exists() and (tmp_path / "ds" / "meta" / "info.json").is_file()


def test_eval_openloop_refuses_a_dataset_of_another_contract(tmp_path, converted, tiny_checkpoint):
    _, out = converted
    with pytest.raises(ValueError, match="does not fit the bimanual_ee contract"):
        read_dataset_runs(out["bag"][0], contract("bimanual_ee"))
