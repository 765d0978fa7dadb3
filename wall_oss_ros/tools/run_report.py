"""A closed-loop run, read back from its bag: summary figures, limit checks and plots.

Everything comes from the recorded messages (rosbags), so the same report can be made for any bag of
the graph: commanded vs measured joints with chunk arrivals, observation → chunk latency and inference
time, executor state and safety interventions over time, and a count of commands outside the contract's
limits (which must be zero).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader

from wall_oss_ros.core.contract import GroupKind, OutputKind, RobotContract
from wall_oss_ros.ros.bag_io import typestore_with_own_messages

STATE_NAMES = ("IDLE", "RUNNING", "PAUSED", "HOLDING", "HALTING", "ESTOP", "FAULT")  # ExecutorStatus.STATE_*


def _sec(stamp) -> float:  # noqa: ANN001 - a deserialised builtin_interfaces/Time
    return stamp.sec + stamp.nanosec * 1e-9


@dataclass
class RunData:
    joint_t: list[float] = field(default_factory=list)
    joint_names: tuple[str, ...] = ()
    joint_q: list[np.ndarray] = field(default_factory=list)
    commands: dict[str, list[tuple[float, np.ndarray, np.ndarray]]] = field(default_factory=dict)  # group → t, p, v
    chunk_arrival: list[float] = field(default_factory=list)
    chunk_t_obs: list[float] = field(default_factory=list)
    chunk_inference_s: list[float] = field(default_factory=list)
    chunk_finite: list[bool] = field(default_factory=list)
    status_t: list[float] = field(default_factory=list)
    status_state: list[int] = field(default_factory=list)
    status_interventions: list[dict[str, int]] = field(default_factory=list)
    faults: list[tuple[float, str]] = field(default_factory=list)  # (time, text) whenever last_fault changed
    reward: list[float] = field(default_factory=list)
    missed_deadlines: int | None = None  # the executor's count on /diagnostics, last seen


def read_run(bag: Path, contract: RobotContract) -> RunData:
    topics = {g.output.topic: g.name for g in contract.groups if g.output.kind is OutputKind.JTC}
    data = RunData(commands={name: [] for name in topics.values()})
    with AnyReader([Path(bag)], default_typestore=typestore_with_own_messages()) as reader:
        for conn, t_ns, raw in reader.messages():
            t = t_ns * 1e-9
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic in contract.joint_state_topics:
                data.joint_t.append(_sec(msg.header.stamp))
                data.joint_names = tuple(msg.name)
                data.joint_q.append(np.asarray(msg.position, dtype=float))
            elif conn.topic in topics:
                point = msg.points[0]
                data.commands[topics[conn.topic]].append((t, np.asarray(point.positions, dtype=float),
                                                          np.asarray(point.velocities, dtype=float)))
            elif conn.msgtype == "wall_oss_ros/msg/ActionChunk":
                data.chunk_arrival.append(t)
                data.chunk_t_obs.append(_sec(msg.header.stamp))
                data.chunk_inference_s.append(_sec(msg.inference_end) - _sec(msg.inference_start))
                data.chunk_finite.append(bool(np.all(np.isfinite(msg.values))))
            elif conn.msgtype == "wall_oss_ros/msg/ExecutorStatus":
                data.status_t.append(t)
                data.status_state.append(int(msg.state))
                data.status_interventions.append(dict(zip(msg.intervention_kinds,
                                                          (int(c) for c in msg.intervention_counts), strict=True)))
                if msg.last_fault and (not data.faults or data.faults[-1][1] != msg.last_fault):
                    data.faults.append((t, msg.last_fault))
            elif conn.msgtype == "diagnostic_msgs/msg/DiagnosticArray":
                for status in msg.status:
                    values = {kv.key: kv.value for kv in status.values}
                    if status.name == "wall_oss_ros: executor" and "missed_deadlines" in values:
                        data.missed_deadlines = int(values["missed_deadlines"])
            elif conn.topic.endswith("/reward"):
                data.reward.append(float(msg.data))
    return data


def limit_violations(data: RunData, contract: RobotContract) -> dict[str, int]:
    """Commands outside position limits, over the velocity limit, or not finite; non-finite measurements."""
    out = {"position": 0, "velocity": 0, "nonfinite_command": 0, "nonfinite_joint_state": 0, "nonfinite_chunk": 0}
    for g in contract.groups:
        if g.kind not in (GroupKind.JOINT_POSITION, GroupKind.GRIPPER) or g.name not in data.commands:
            continue
        lo = np.array([x.position_min for x in g.limits])
        hi = np.array([x.position_max for x in g.limits])
        vmax = np.array([x.velocity_max for x in g.limits])
        for _, p, v in data.commands[g.name]:
            if not (np.all(np.isfinite(p)) and np.all(np.isfinite(v))):
                out["nonfinite_command"] += 1
                continue
            out["position"] += int(np.any(p < lo - 1e-9) or np.any(p > hi + 1e-9))
            out["velocity"] += int(len(v) == len(vmax) and np.any(np.abs(v) > vmax * (1 + 1e-6)))
    out["nonfinite_joint_state"] = sum(int(not np.all(np.isfinite(q))) for q in data.joint_q)
    out["nonfinite_chunk"] = data.chunk_finite.count(False)
    return out


def joint_motion(t: np.ndarray, q: np.ndarray, names: tuple[str, ...], contract: RobotContract) -> dict:
    """Measured arm joint velocities and accelerations (finite differences of consecutive joint states) against
    the contract's limits: the worst as a share of its limit, and the samples over 105 %."""
    index = {n: i for i, n in enumerate(names)}
    keep = np.concatenate([[True], np.diff(t) > 1e-6])  # a state received twice has no new stamp
    t, q = t[keep], q[keep]
    dt = np.diff(t)
    out: dict[str, object] = {"max_joint_velocity_of_limit": 0.0, "joint_velocity_samples_over_limit": 0,
                              "max_joint_acceleration_of_limit": 0.0, "joint_acceleration_samples_over_limit": 0}
    for g in contract.groups:
        if g.kind is not GroupKind.JOINT_POSITION:
            continue
        for axis, lim in zip(g.axes, g.limits, strict=True):
            if axis not in index or len(t) < 3:
                continue
            v = np.diff(q[:, index[axis]]) / dt
            a = np.diff(v) / (0.5 * (dt[1:] + dt[:-1]))
            for kind, x, bound, at in (("velocity", v, lim.velocity_max, t[1:]),
                                       ("acceleration", a, lim.acceleration_max, t[1:-1])):
                share = np.abs(x) / bound
                k = int(np.argmax(share))
                if share[k] > out[f"max_joint_{kind}_of_limit"]:
                    out[f"max_joint_{kind}_of_limit"] = float(share[k])
                    out[f"max_joint_{kind}_at"] = f"{axis} at {at[k]:.2f} s"
                out[f"joint_{kind}_samples_over_limit"] += int(np.sum(share > 1.05))
    return out


def measured_motion(data: RunData, contract: RobotContract, control_hz: float = 100.0) -> dict:
    """What the robot did, not what was commanded: joint_motion of /joint_states, the gaps between commands as
    they arrived, and the executor's missed control deadlines. A starved executor whose every command is
    within limits can still make the robot lurch after a gap."""
    out: dict[str, object] = {}
    if len(data.joint_t) > 2:
        out.update(joint_motion(np.array(data.joint_t), np.array(data.joint_q), data.joint_names, contract))
    first = next((g.name for g in contract.groups if data.commands.get(g.name)), None)
    if first is not None and len(data.commands[first]) > 1:
        gaps = np.diff([c[0] for c in data.commands[first]])
        out["command_gap_max_s"] = float(gaps.max())
        out["command_gaps_over_1_5_periods"] = int(np.sum(gaps > 1.5 / control_hz))
    if data.missed_deadlines is not None:
        out["missed_deadlines"] = data.missed_deadlines
    return out


def measured_rows(measured: dict) -> list[str]:
    """Report rows of measured_motion (what the robot did)."""
    rows = []
    for kind in ("velocity", "acceleration"):
        if f"max_joint_{kind}_of_limit" in measured:
            share = 100 * measured[f"max_joint_{kind}_of_limit"]
            rows.append(f"| measured arm joint {kind}, max (of its limit) | {share:.0f} % "
                        f"({measured.get(f'max_joint_{kind}_at', '')}; "
                        f"{measured[f'joint_{kind}_samples_over_limit']} samples over 105 %) |")
    if "command_gap_max_s" in measured:
        rows.append(f"| command gaps over 1.5 periods / longest | {measured['command_gaps_over_1_5_periods']} / "
                    f"{1e3 * measured['command_gap_max_s']:.0f} ms |")
    if "missed_deadlines" in measured:
        rows.append(f"| executor missed control deadlines | {measured['missed_deadlines']} |")
    return rows


def summarize(data: RunData, contract: RobotContract) -> dict:
    first = contract.groups[0].name
    times = np.array([c[0] for c in data.commands.get(first, [])])
    span = float(times[-1] - times[0]) if len(times) > 1 else 0.0
    latency = np.array(data.chunk_arrival) - np.array(data.chunk_t_obs)
    inference = np.array(data.chunk_inference_s)
    violations = limit_violations(data, contract)

    def pct(a: np.ndarray, q: float) -> float | None:
        return float(np.percentile(a, q)) if len(a) else None

    return {
        "contract": contract.name,
        "sim_time_s": float(max(data.joint_t, default=0.0)),
        "commands": len(times),
        "control_rate_hz": (len(times) - 1) / span if span > 0 else 0.0,
        "chunks": len(data.chunk_arrival),
        "observation_to_chunk_s": {"p50": pct(latency, 50), "p95": pct(latency, 95)},
        "inference_s": {"p50": pct(inference, 50), "p95": pct(inference, 95)},
        "interventions": data.status_interventions[-1] if data.status_interventions else {},
        "final_state": STATE_NAMES[data.status_state[-1]] if data.status_state else None,
        "faults": [{"t": t, "text": text} for t, text in data.faults],
        "limit_violations": violations,
        "limit_violations_total": sum(violations.values()),
        "measured": measured_motion(data, contract),
        "max_reward": max(data.reward, default=0.0),
    }


def plot(data: RunData, contract: RobotContract, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    arm = contract.groups[0]
    names = list(arm.axes)
    gripper = next((g for g in contract.groups if g.kind is GroupKind.GRIPPER), None)
    if gripper is not None:
        names.append(gripper.axes[0])
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 1.6 * len(names)), sharex=True)
    q = np.array(data.joint_q) if data.joint_q else np.zeros((0, len(data.joint_names)))
    for ax, name in zip(np.atleast_1d(axes), names, strict=True):
        group = arm if name in arm.axes else gripper
        column = list(group.axes).index(name)
        cmds = data.commands.get(group.name, [])
        if cmds:
            ax.plot([c[0] for c in cmds], [c[1][column] for c in cmds], lw=1.2, label="commanded")
        if name in data.joint_names and len(q):
            ax.plot(data.joint_t, q[:, data.joint_names.index(name)], lw=1.0, ls="--", label="measured")
        for t in data.chunk_arrival:
            ax.axvline(t, color="0.85", lw=0.5, zorder=0)
        ax.set_ylabel(name.split("/")[-1], fontsize=8)
    np.atleast_1d(axes)[0].legend(loc="upper right", fontsize=8)
    np.atleast_1d(axes)[0].set_title(f"{arm.name}: commanded vs measured (grey: chunk arrivals)")
    np.atleast_1d(axes)[-1].set_xlabel("sim time [s]")
    fig.tight_layout()
    paths.append(out_dir / "joints.png")
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 3))
    arrival = np.array(data.chunk_arrival)
    ax.plot(arrival, 1e3 * (arrival - np.array(data.chunk_t_obs)), ".-", label="observation → chunk at executor")
    ax.plot(arrival, 1e3 * np.array(data.chunk_inference_s), ".-", label="inference (policy clock)")
    ax.set_xlabel("sim time [s]")
    ax.set_ylabel("ms")
    ax.legend(fontsize=8)
    ax.set_title("chunk latency")
    fig.tight_layout()
    paths.append(out_dir / "latency.png")
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 4), sharex=True)
    ax1.step(data.status_t, data.status_state, where="post")
    ax1.set_yticks(range(len(STATE_NAMES)), STATE_NAMES, fontsize=7)
    ax1.set_title("executor state and safety interventions")
    kinds = sorted({k for d in data.status_interventions for k, v in d.items() if v})
    for kind in kinds:
        ax2.step(data.status_t, [d.get(kind, 0) for d in data.status_interventions], where="post", label=kind)
    ax2.set_ylabel("count")
    ax2.set_xlabel("sim time [s]")
    if kinds:
        ax2.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out_dir / "status.png")
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)
    return paths


def write_report(bag: Path, contract: RobotContract, out_dir: Path, title: str, notes: str = "") -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = read_run(bag, contract)
    summary = summarize(data, contract)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    images = plot(data, contract, out_dir)
    lat, inf = summary["observation_to_chunk_s"], summary["inference_s"]

    def ms(x: float | None) -> str:
        return "–" if x is None else f"{1e3 * x:.1f} ms"

    interventions = ", ".join(f"{k}: {v}" for k, v in summary["interventions"].items() if v)
    lines = [f"# {title}", "", notes, "", "| figure | value |", "|---|---|",
             f"| sim time | {summary['sim_time_s']:.2f} s |",
             f"| control rate achieved ({contract.groups[0].name}) | {summary['control_rate_hz']:.1f} Hz |",
             f"| chunks | {summary['chunks']} |",
             f"| observation → chunk at executor p50 / p95 | {ms(lat['p50'])} / {ms(lat['p95'])} |",
             f"| inference p50 / p95 | {ms(inf['p50'])} / {ms(inf['p95'])} |",
             f"| interventions | {interventions or 'none'} |",
             f"| limit violations (commands) | **{summary['limit_violations_total']}** |",
             *measured_rows(summary["measured"]),
             f"| final executor state | {summary['final_state']} |",
             f"| best task reward | {summary['max_reward']:.0f} |", ""]
    if data.faults:
        lines += ["Faults and rejections reported by the executor:", ""]
        lines += [f"- {t:.2f} s: {text}" for t, text in data.faults] + [""]
    lines += [f"![{p.stem}]({p.name})" for p in images]
    lines += ["", f"Bag: `{bag}`", ""]
    report = out_dir / "report.md"
    report.write_text("\n".join(lines))
    return report
