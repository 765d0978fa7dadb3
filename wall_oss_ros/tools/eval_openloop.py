"""`wall-oss-ros eval-openloop BAG`: run the policy offline on a bag's observations, score it against the
recording.

No ROS graph: the bag is read with `rosbags`, observations are assembled by the same synchroniser the
policy node uses (newest frame + the joint states stamped nearest it), in the order the messages were
received, and every k-th goes through the same backend with the same seed — so a chunk here equals the
chunk the live graph computed from that observation on replay. Ground truth is what the robot did next:
the recorded joint commands when the bag has them, else the recorded joint states.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wall_oss_ros.core.chunk import Chunk, absolute_targets
from wall_oss_ros.core.contract import RobotContract
from wall_oss_ros.core.observation import Snapshot
from wall_oss_ros.tools.bag_observations import RecordingStream
from wall_oss_ros.tools.bag_timing import RecordingAudit
from wall_oss_ros.tools.openloop_metrics import EvaluatedChunk, compute_metrics, ground_truth


@dataclass(frozen=True)
class RecordedRun:
    snapshots: list[Snapshot]  # the selected observations (frames still encoded)
    instruction: str
    truth_source: str  # "commands" or "joint_states"
    truth_times: np.ndarray  # (T,)
    truth_values: np.ndarray  # (T, D) contract action order; NaN where a dimension has no record
    audit: RecordingAudit  # the time source, clock offsets and what was dropped, per topic


def read_recording(bag: Path, contract: RobotContract, every: int = 1, sync_tolerance_s: float = 0.05,
                   max_observations: int | None = None, time_source: str = "header",
                   max_clock_offset_s: float = 0.1) -> RecordedRun:
    """Every k-th synchronised observation of the bag, and the recorded trajectory to compare with, all on one
    time source (bag_timing.py); what was dropped is counted in the run's audit."""
    stream = RecordingStream(bag, contract, sync_tolerance_s, time_source, max_clock_offset_s)
    snapshots: list[Snapshot] = []
    for seen, snapshot in enumerate(stream):
        if seen % every == 0:
            snapshots.append(snapshot)
        if max_observations is not None and len(snapshots) >= max_observations:
            break
    stream.finish()
    _check_frames(bag, snapshots, stream.camera_topics)
    if not snapshots:
        raise ValueError(stream.no_observation_reason())
    times, values = stream.truth()
    instruction = stream.instructions[-1][1] if stream.instructions else ""
    return RecordedRun(snapshots, instruction, stream.truth_source, times, values, stream.audit)


def _check_frames(bag: Path, snapshots: list[Snapshot], topics: dict[str, str]) -> None:
    """Every selected frame decodes (encoding known, data intact), before any model is loaded."""
    from wall_oss_ros.ros.image_codec import ConversionError, decode_image

    for snap in snapshots:
        for name, frame in snap.frames.items():
            if isinstance(frame, np.ndarray):  # already pixels (a dataset's frame)
                continue
            try:
                decode_image(frame)
            except ConversionError as exc:
                raise ValueError(f"{bag}: {topics.get(name, name)}, frame stamped {snap.t_obs:.3f} s: {exc}") from exc


def evaluate(run: RecordedRun, backend, contract: RobotContract, instruction: str = "",  # noqa: ANN001 - backend
             progress: bool = True) -> tuple[list[EvaluatedChunk], list[object]]:
    """The backend on every selected observation: (scored chunks, raw ChunkResults)."""
    from tqdm import tqdm

    from wall_oss_ros.policy.backend import Observation
    from wall_oss_ros.ros.image_codec import decode_image

    text = instruction or run.instruction
    if not text:
        raise ValueError("no instruction: the bag has no /instruction message; pass --instruction")
    scored, results = [], []
    for i, snap in enumerate(tqdm(run.snapshots, desc="open-loop", unit="obs", disable=not progress)):
        images = {name: frame if isinstance(frame, np.ndarray) else decode_image(frame)
                  for name, frame in snap.frames.items()}
        result = backend.infer(Observation(images, snap.state, text, round(snap.t_obs * 1e9)))
        chunk = Chunk(i, snap.t_obs, result.dt_s, tuple(result.action_names), np.asarray(result.actions),
                      state_names=tuple(result.state_names), state=np.asarray(result.state))
        predicted = absolute_targets(np.asarray(result.actions), chunk, contract)
        query = snap.t_obs + result.dt_s * np.arange(len(predicted))
        scored.append(EvaluatedChunk(snap.t_obs, predicted, ground_truth(run.truth_times, run.truth_values, query)))
        results.append(result)
    return scored, results


def merged(runs: list[RecordedRun]) -> RecordedRun:
    """One run of several (a dataset's episodes, on one time axis) for the report."""
    if len(runs) == 1:
        return runs[0]
    return RecordedRun([s for r in runs for s in r.snapshots], runs[0].instruction, runs[0].truth_source,
                       np.concatenate([r.truth_times for r in runs]), np.concatenate([r.truth_values for r in runs]),
                       runs[0].audit)


def plot_overlays(chunks: list[EvaluatedChunk], run: RecordedRun, contract: RobotContract, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for g in contract.groups:
        cols = range(contract.action_slice(g).start, contract.action_slice(g).stop)
        fig, axes = plt.subplots(len(cols), 1, figsize=(10, 1.5 * len(cols) + 0.6), sharex=True, squeeze=False)
        for ax, d in zip(axes[:, 0], cols, strict=True):
            known = np.isfinite(run.truth_values[:, d])
            if known.any():
                ax.plot(run.truth_times[known], run.truth_values[known, d], color="k", lw=1.0)
            for c in chunks:
                ax.plot(c.t_obs + contract.dt_s * np.arange(len(c.predicted)), c.predicted[:, d], lw=0.8,
                        alpha=0.6, color="tab:blue")
            ax.set_ylabel(contract.action_names[d].split("/")[-1], fontsize=8)
        axes[0, 0].set_title(f"{g.name}: recorded (black) vs predicted chunks (blue)")
        axes[-1, 0].set_xlabel("time [s]")
        fig.tight_layout()
        paths.append(out / f"overlay_{g.name}.png")
        fig.savefig(paths[-1], dpi=80)
        plt.close(fig)
    return paths


def run_eval(bag: Path, checkpoint: Path, contract_ref: str, out: Path, every: int = 1, seed: int = 0,
             device: str | None = None, instruction: str = "", max_observations: int | None = None,
             denoising_steps: int = 10, time_source: str = "header", max_clock_offset_s: float = 0.1) -> dict:
    from wall_oss_ros.core.contract import resolve_contract
    from wall_oss_ros.policy.loader import load_backend
    from wall_oss_ros.tools.dataset_runs import is_dataset, read_dataset_runs

    if every < 1:
        raise ValueError("every must be at least 1")
    contract = resolve_contract(contract_ref)
    if is_dataset(bag):  # a LeRobot dataset: one run per episode
        runs = read_dataset_runs(bag, contract, every, max_observations)
    else:
        runs = [read_recording(bag, contract, every, max_observations=max_observations, time_source=time_source,
                               max_clock_offset_s=max_clock_offset_s)]
    for warning in runs[0].audit.warnings():
        print(f"warning: {bag}: {warning}", file=sys.stderr)
    backend, _ = load_backend(checkpoint, contract, device=device, denoising_steps=denoising_steps, seed=seed)
    chunks = [c for run in runs for c in evaluate(run, backend, contract, instruction)[0]]
    run = merged(runs)
    metrics = compute_metrics(chunks, contract.action_names, contract.dt_s)
    if metrics["mae_mean"] is None:
        span = (f"[{run.truth_times[0]:.3f}, {run.truth_times[-1]:.3f}] s" if len(run.truth_times) else "empty")
        raise ValueError(f"{bag}: no recorded {run.truth_source} overlap the predicted chunks (observations at "
                         f"[{chunks[0].t_obs:.3f}, {chunks[-1].t_obs:.3f}] s, ground truth {span}, "
                         f"{run.audit.time_source} times)")
    metrics.update({"bag": str(bag), "checkpoint": str(checkpoint), "contract": contract.name, "every": every,
                    "seed": seed, "ground_truth": run.truth_source, "observations": len(run.snapshots),
                    "episodes": len(runs),
                    "recording": run.audit.summary()})
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plots = plot_overlays(chunks, run, contract, out)
    m = metrics
    rows = [f"| `{n}` | {_fmt(m['mae'][n])} | {_fmt(m['rmse'][n])} | {_fmt(m['jerk_predicted'][n], 1)} "
            f"| {_fmt(m['jerk_recorded'][n], 1)} | {_fmt(m['boundary_jump_max'][n])} |" for n in contract.action_names]
    report = [f"# Open-loop evaluation of `{checkpoint}` on `{bag}`", "",
              f"{len(chunks)} observations (every {every}), seed {seed}, ground truth: recorded "
              f"{run.truth_source}, horizon {m['horizon']} × {contract.dt_s} s.", "",
              "| dimension | MAE | RMSE | jerk predicted | jerk recorded | max jump at takeover |",
              "|---|---|---|---|---|---|", *rows, "",
              "Mean absolute error by horizon step: " + ", ".join(_fmt(v) for v in m["error_by_step"]), "",
              *_recording_rows(m["recording"]),
              *[f"![{p.stem}]({p.name})" for p in plots], ""]
    (out / "report.md").write_text("\n".join(report))
    return metrics


def _recording_rows(recording: dict) -> list[str]:
    """What the bag gave and what its reading dropped, per topic, on which clock."""
    rows = [f"Times: {recording['time_source']} stamps.", "",
            "| topic | messages | out of order (dropped) | not finite (dropped) | zero stamps | receive − header |",
            "|---|---|---|---|---|---|"]
    for topic, t in recording["topics"].items():
        offset = "–" if t["receive_minus_header_s"] is None else f"{t['receive_minus_header_s']:+.3f} s"
        rows.append(f"| `{topic}` | {t['messages']} | {t['out_of_order_dropped']} | {t['not_finite_dropped']} | "
                    f"{t['zero_stamps']} | {offset} |")
    rows += ["", *[f"Frames without an observation: {why} ({n})"
                   for why, n in recording["unsynchronised_frames"].items()]]
    rows += [f"**Warning**: {w}" for w in recording["warnings"]]
    return [*rows, ""]


def _fmt(v: float | None, digits: int = 4) -> str:
    return "–" if v is None else f"{v:.{digits}f}"
