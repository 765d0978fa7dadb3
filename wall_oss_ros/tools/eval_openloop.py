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
from wall_oss_ros.core.contract import CameraTransport, GroupKind, OutputKind, RobotContract
from wall_oss_ros.core.observation import NO_NEW_OBSERVATION, ObservationAssembler, Snapshot
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


def _stamp(msg) -> float:  # noqa: ANN001 - a deserialised message with a header
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def read_recording(bag: Path, contract: RobotContract, every: int = 1, sync_tolerance_s: float = 0.05,
                   max_observations: int | None = None, time_source: str = "header",
                   max_clock_offset_s: float = 0.1) -> RecordedRun:
    """Every k-th synchronised observation of the bag, and the recorded trajectory to compare with, all on one
    time source (bag_timing.py); what was dropped is counted in the run's audit."""
    from rosbags.highlevel import AnyReader, AnyReaderError

    from wall_oss_ros.ros.bag_io import typestore_with_own_messages

    cameras = {c.topic: c for c in contract.cameras}
    command_groups = {g.output.topic: g for g in contract.groups if g.output.kind is OutputKind.JTC}
    names = contract.action_names
    column = {(g.name, axis): contract.action_slice(g).start + i for g in contract.groups
              if g.kind in (GroupKind.JOINT_POSITION, GroupKind.GRIPPER) for i, axis in enumerate(g.axes)}
    joint_column = {axis: col for (_, axis), col in column.items()}
    try:
        reader = AnyReader([Path(bag)], default_typestore=typestore_with_own_messages())
        reader.open()
    except (AnyReaderError, OSError, ValueError) as exc:
        raise ValueError(f"{bag}: cannot read the bag ({exc})") from exc
    try:
        present = set(reader.topics)
        for topic in list(cameras):  # image_transport's compressed twin stands in for a missing raw topic
            if topic not in present and f"{topic}/compressed" in present:
                cameras[f"{topic}/compressed"] = cameras.pop(topic)
        needed = set(cameras) | set(contract.joint_state_topics)
        missing = sorted(needed - present)
        if missing:
            raise ValueError(f"{bag}: the {contract.name} contract needs topics {missing}, the bag has "
                             f"{sorted(present)}")
        for topic, cam in cameras.items():
            compressed = cam.transport is CameraTransport.COMPRESSED or topic.endswith("/compressed")
            expected = "CompressedImage" if compressed else "Image"
            if not reader.topics[topic].msgtype.endswith(f"/{expected}"):
                raise ValueError(f"{bag}: {topic} holds {reader.topics[topic].msgtype}, the contract expects "
                                 f"{expected}")
        use_commands = any(t in present for t in command_groups)
        audit = RecordingAudit(time_source, max_clock_offset_s)
        assembler = ObservationAssembler(contract, sync_tolerance_s, max_age_s=float("inf"))
        snapshots: list[Snapshot] = []
        seen = 0
        instruction = ""
        truth_t: list[float] = []
        truth_v: list[np.ndarray] = []
        pending = ""  # why the newest frame has not made an observation yet ("": none waiting)
        wanted = [c for c in reader.connections if c.topic in needed or c.topic in command_groups or
                  c.topic == "/instruction"]
        try:
            for conn, t_ns, raw in reader.messages(connections=wanted):
                now = t_ns * 1e-9
                msg = reader.deserialize(raw, conn.msgtype)
                if conn.topic == "/instruction":
                    instruction = msg.data
                    continue
                t = audit.time(conn.topic, _stamp(msg), now)
                if t is None:  # out of order on its topic: counted, not used
                    continue
                if conn.topic in cameras:
                    if pending:
                        audit.unsynchronised[pending] += 1  # superseded before it made an observation
                    assembler.add_frame(cameras[conn.topic].name, t, msg)
                    pending = "waiting"
                elif conn.topic in contract.joint_state_topics:
                    positions = dict(zip(msg.name, (float(x) for x in msg.position), strict=False))
                    if not all(np.isfinite(v) for v in positions.values()):
                        audit.not_finite(conn.topic)
                        continue
                    assembler.add_joints(t, positions)
                    if not use_commands:
                        row = np.full(len(names), np.nan)
                        for axis, value in positions.items():
                            if axis in joint_column:
                                row[joint_column[axis]] = value
                        truth_t.append(t)
                        truth_v.append(row)
                elif conn.topic in command_groups and msg.points:
                    g = command_groups[conn.topic]
                    point = msg.points[0]
                    if not np.all(np.isfinite(np.asarray(point.positions, dtype=float))):
                        audit.not_finite(conn.topic)
                        continue
                    row = np.full(len(names), np.nan)
                    for axis, value in zip(msg.joint_names, point.positions, strict=False):
                        if (g.name, axis) in column:
                            row[column[(g.name, axis)]] = float(value)
                    truth_t.append(t + point.time_from_start.sec + point.time_from_start.nanosec * 1e-9)
                    truth_v.append(row)
                if pending:
                    snapshot, reason = assembler.snapshot(now)
                    if snapshot is None:
                        pending = reason if reason != NO_NEW_OBSERVATION else pending
                        continue
                    pending = ""
                    if seen % every == 0:
                        snapshots.append(snapshot)
                    seen += 1
                    if max_observations is not None and len(snapshots) >= max_observations:
                        break
        except (AnyReaderError, OSError, ValueError, KeyError) as exc:
            raise ValueError(f"{bag}: the bag is truncated or corrupt ({exc})") from exc
    finally:
        reader.close()
    if pending:
        audit.unsynchronised[pending] += 1
    _check_frames(bag, snapshots, {cam.name: topic for topic, cam in cameras.items()})
    audit.check(bag, tuple(cameras) + tuple(contract.joint_state_topics))
    if not snapshots:
        reasons = "; ".join(f"{why} ({n} frames)" for why, n in audit.unsynchronised.most_common(3))
        raise ValueError(f"{bag}: no synchronised observation: {reasons or 'no camera frame'}")
    times, values = np.array(truth_t), np.array(truth_v) if truth_v else np.zeros((0, len(names)))
    order = np.argsort(times, kind="stable")
    times, values = times[order], values[order]
    return RecordedRun(snapshots, instruction, "commands" if use_commands else "joint_states", times, values, audit)


def _check_frames(bag: Path, snapshots: list[Snapshot], topics: dict[str, str]) -> None:
    """Every selected frame decodes (encoding known, data intact), before any model is loaded."""
    from wall_oss_ros.ros.conversions import ConversionError, image_to_rgb

    for snap in snapshots:
        for name, frame in snap.frames.items():
            try:
                image_to_rgb(frame)
            except ConversionError as exc:
                raise ValueError(f"{bag}: {topics.get(name, name)}, frame stamped {snap.t_obs:.3f} s: {exc}") from exc


def evaluate(run: RecordedRun, backend, contract: RobotContract, instruction: str = "",  # noqa: ANN001 - backend
             progress: bool = True) -> tuple[list[EvaluatedChunk], list[object]]:
    """The backend on every selected observation: (scored chunks, raw ChunkResults)."""
    from tqdm import tqdm

    from wall_oss_ros.policy.backend import Observation
    from wall_oss_ros.ros.conversions import image_to_rgb

    text = instruction or run.instruction
    if not text:
        raise ValueError("no instruction: the bag has no /instruction message; pass --instruction")
    scored, results = [], []
    for i, snap in enumerate(tqdm(run.snapshots, desc="open-loop", unit="obs", disable=not progress)):
        images = {name: image_to_rgb(frame) for name, frame in snap.frames.items()}
        result = backend.infer(Observation(images, snap.state, text, round(snap.t_obs * 1e9)))
        chunk = Chunk(i, snap.t_obs, result.dt_s, tuple(result.action_names), np.asarray(result.actions),
                      state_names=tuple(result.state_names), state=np.asarray(result.state))
        predicted = absolute_targets(np.asarray(result.actions), chunk, contract)
        query = snap.t_obs + result.dt_s * np.arange(len(predicted))
        scored.append(EvaluatedChunk(snap.t_obs, predicted, ground_truth(run.truth_times, run.truth_values, query)))
        results.append(result)
    return scored, results


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

    if every < 1:
        raise ValueError("every must be at least 1")
    contract = resolve_contract(contract_ref)
    run = read_recording(bag, contract, every, max_observations=max_observations, time_source=time_source,
                         max_clock_offset_s=max_clock_offset_s)
    for warning in run.audit.warnings():
        print(f"warning: {bag}: {warning}", file=sys.stderr)
    backend, _ = load_backend(checkpoint, contract, device=device, denoising_steps=denoising_steps, seed=seed)
    chunks, _ = evaluate(run, backend, contract, instruction)
    metrics = compute_metrics(chunks, contract.action_names, contract.dt_s)
    if metrics["mae_mean"] is None:
        span = (f"[{run.truth_times[0]:.3f}, {run.truth_times[-1]:.3f}] s" if len(run.truth_times) else "empty")
        raise ValueError(f"{bag}: no recorded {run.truth_source} overlap the predicted chunks (observations at "
                         f"[{chunks[0].t_obs:.3f}, {chunks[-1].t_obs:.3f}] s, ground truth {span}, "
                         f"{run.audit.time_source} times)")
    metrics.update({"bag": str(bag), "checkpoint": str(checkpoint), "contract": contract.name, "every": every,
                    "seed": seed, "ground_truth": run.truth_source, "observations": len(run.snapshots),
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
