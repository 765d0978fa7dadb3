"""A closed-loop run, read back from its bag: summary figures, limit checks and plots.

Everything comes from the recorded messages (rosbags), so the same report can be made for any bag of
the graph: commanded vs measured joints with chunk arrivals, observation → chunk latency and inference
time, executor state and safety interventions over time, a count of commands outside the contract's
limits (which must be zero: positions and velocity fields as published, and velocity, acceleration and
jerk recomputed on the tick grid), chunk-boundary jumps and the robot's measured motion
(tools/motion_checks.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wall_oss_ros.core.contract import GroupKind, RobotContract
from wall_oss_ros.tools.motion_checks import chunk_jumps, command_motion, limit_violations, measured_motion, motion_rows
from wall_oss_ros.tools.provenance import audit_table
from wall_oss_ros.tools.run_data import RunData, read_run

STATE_NAMES = ("IDLE", "RUNNING", "PAUSED", "HOLDING", "HALTING", "ESTOP", "FAULT")  # ExecutorStatus.STATE_*


def summarize(data: RunData, contract: RobotContract) -> dict:
    first = contract.groups[0].name
    times = np.array([c.t for c in data.commands.get(first, [])])
    span = float(times[-1] - times[0]) if len(times) > 1 else 0.0
    latency = np.array([c.arrival - c.t_obs for c in data.chunks])
    inference = np.array([c.inference_s for c in data.chunks])
    violations = limit_violations(data, contract)
    commanded = command_motion(data, contract)
    violations.update({f"{kind}_on_tick_grid": commanded[f"command_{kind}_samples_over_limit"]
                       for kind in ("velocity", "acceleration", "jerk")})

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
        "commanded": commanded,
        "chunk_jumps": chunk_jumps(data, contract),
        "measured": measured_motion(data, contract),
        "max_reward": max(data.reward, default=0.0),
    }


def plot(data: RunData, contract: RobotContract, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    arm = contract.groups[0]
    names = list(arm.joints)
    gripper = next((g for g in contract.groups if g.kind is GroupKind.GRIPPER), None)
    if gripper is not None:
        names.append(gripper.axes[0])
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 1.6 * len(names)), sharex=True)
    q = np.array(data.joint_q) if data.joint_q else np.zeros((0, len(data.joint_names)))
    for ax, name in zip(np.atleast_1d(axes), names, strict=True):
        group = arm if name in arm.joints else gripper
        column = list(group.joints).index(name)
        cmds = data.commands.get(group.name, [])
        if cmds:
            ax.plot([c.t for c in cmds], [c.positions[column] for c in cmds], lw=1.2, label="commanded")
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
    ax.plot(arrival, 1e3 * np.array([c.arrival - c.t_obs for c in data.chunks]), ".-",
            label="observation → chunk at executor")
    ax.plot(arrival, 1e3 * np.array([c.inference_s for c in data.chunks]), ".-", label="inference (policy clock)")
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
    paths += plot_tips_and_base(data, contract, out_dir)
    return paths


def plot_tips_and_base(data: RunData, contract: RobotContract, out_dir: Path) -> list[Path]:
    """End-effector paths of the arms through IK (forward kinematics of the commanded and the measured
    joints, in each arm's base frame) and the base's trajectory from its odometry."""
    import matplotlib.pyplot as plt

    from wall_oss_ros.core.ik_stage import arm_kinematics

    paths = []
    arms = [g for g in contract.groups if g.ik is not None and data.commands.get(g.name)]
    if arms:
        fig, axes = plt.subplots(3, len(arms), figsize=(5 * len(arms), 6), sharex=True, squeeze=False)
        q = np.array(data.joint_q) if data.joint_q else np.zeros((0, len(data.joint_names)))
        for k, g in enumerate(arms):
            fk = arm_kinematics(g)
            cmds = data.commands[g.name]
            commanded = np.array([fk.forward(c.positions)[0] for c in cmds])
            measured = None
            if len(q) and all(j in data.joint_names for j in g.joints):
                cols = [data.joint_names.index(j) for j in g.joints]
                measured = np.array([fk.forward(row[cols])[0] for row in q])
            for i, label in enumerate("xyz"):
                ax = axes[i, k]
                ax.plot([c.t for c in cmds], commanded[:, i], lw=1.2, label="commanded")
                if measured is not None:
                    ax.plot(data.joint_t, measured[:, i], lw=1.0, ls="--", label="measured")
                ax.set_ylabel(f"{label} [m]", fontsize=8)
            axes[0, k].set_title(f"{g.name} tip in {g.ik.base_frame}")
            axes[-1, k].set_xlabel("sim time [s]")
        axes[0, 0].legend(fontsize=8)
        fig.tight_layout()
        paths.append(out_dir / "ee_paths.png")
        fig.savefig(paths[-1], dpi=90)
        plt.close(fig)
    if data.base_odometry:
        odometry = np.array(data.base_odometry)
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(odometry[:, 1], odometry[:, 2], lw=1.2)
        ax.plot(odometry[:1, 1], odometry[:1, 2], "o", label="start")
        ax.set_xlabel("x [m]")
        ax.set_ylabel("y [m]")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title("base trajectory (odometry)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(out_dir / "base.png")
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
             *motion_rows(summary["commanded"], summary["chunk_jumps"], summary["measured"]),
             f"| final executor state | {summary['final_state']} |",
             f"| best task reward | {summary['max_reward']:.0f} |", ""]
    if data.faults:
        lines += ["Faults and rejections reported by the executor:", ""]
        lines += [f"- {t:.2f} s: {text}" for t, text in data.faults] + [""]
    audit = recorded_audit(bag)
    if audit:
        lines += ["Capture audit (as recorded; a gap is an interval over 2 expected periods):", "",
                  *audit_table(audit), ""]
    lines += [f"![{p.stem}]({p.name})" for p in images]
    lines += ["", f"Bag: `{bag}`", ""]
    report = out_dir / "report.md"
    report.write_text("\n".join(lines))
    return report


def recorded_audit(bag: Path) -> list[dict]:
    """The capture audit a recorder wrote into the bag's metadata (none in bags from other tools)."""
    import yaml

    from wall_oss_ros.tools.provenance import AUDIT_KEY

    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    raw = (meta.get("custom_data") or {}).get(AUDIT_KEY)
    return json.loads(raw) if raw else []

