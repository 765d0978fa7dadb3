"""Executor cost per control tick (full safety pipeline) and per chunk merge, for the 14-D and 26-D contracts,
and for TIAGo++ (26-D: both arms through IK, with the self-collision guard and the singularity check).

A realistic stream: 100 Hz ticks, a chunk every 20 ticks computed from an observation 50 ms old, smooth
motion near the middle of the workspace, a robot that tracks its commands. Prints p50 / p99 / max in µs
and the 26-D / 14-D ratio measured in this run, and the cost of the JTC horizon-mode preview per tick.

    python benchmarks/bench_executor.py [--ticks 5000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from wall_oss_ros.core.chunk import Chunk
from wall_oss_ros.core.contract import GroupKind, Representation, RobotContract, load_contract
from wall_oss_ros.core.executor import Executor
from wall_oss_ros.core.executor_types import ExecutorConfig, MeasuredState
from wall_oss_ros.core.ik_stage import arm_ik
from wall_oss_ros.core.plan import MergeStrategy, PlanConfig
from wall_oss_ros.core.resources import config_path
from wall_oss_ros.core.rotations import matrix_to_quat_one, quat_to_rot6d

CONTRACTS = {"14-D aloha_bimanual": "aloha_bimanual", "26-D mobile_manipulator": "mobile_manipulator",
             "26-D tiago_dual (IK + collision)": "tiago_dual"}
ALOHA_ARM = [0.0, -0.96, 1.16, 0.0, -0.3, 0.0]
TIAGO_ARM = [0.3, -0.6, 2.2, 2.0, -0.2, 1.2, -0.5]


def rest(c: RobotContract) -> tuple[MeasuredState, np.ndarray, np.ndarray]:
    """A robot at rest mid-range, its observed state in action layout, and the action that holds it there."""
    joints, poses, action, state = {}, {}, [], []
    for g in c.groups:
        if g.kind is GroupKind.EE_POSE:
            if g.ik is not None:  # measured through the arm's joints
                joints.update(zip(g.joints, TIAGO_ARM, strict=True))
                xyz, rotation = arm_ik(g).forward(np.array(TIAGO_ARM))
                quat = matrix_to_quat_one(rotation)
            else:
                xyz = (np.array(g.workspace.min_m) + np.array(g.workspace.max_m)) / 2
                quat = np.array([1.0, 0.0, 0.0, 0.0])
                poses[g.name] = (xyz, quat)
            pose = [*xyz, *quat_to_rot6d(quat)]
            state += pose
            relative = g.representation is Representation.RELATIVE
            action += [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0] if relative else pose  # identity delta
            continue
        if g.kind is GroupKind.BASE_TWIST:
            action += [0.0] * g.action_dim
            state += [0.0] * g.action_dim
            continue
        for i, (axis, lim) in enumerate(zip(g.axes, g.limits, strict=True)):
            value = ALOHA_ARM[i] if g.name.endswith("_arm") and c.name == "aloha_bimanual" else (
                (lim.position_min + lim.position_max) / 2 if np.isfinite(lim.position_min) else 0.0)
            joints[axis] = value
            state.append(value)
            action.append(0.0 if g.representation is Representation.RELATIVE else value)
    return MeasuredState(0.0, joints, poses), np.array(state), np.array(action)


ANALYSED_WARMUP_MERGES = 15  # merges during the 300 warm-up ticks (one every 20), left out of the figures
FAST_HZ, FAST_SHARE = 1.5, 1.19  # the infeasible stream: 1.5 Hz sinusoids needing 119 % of a_max


def motion(c: RobotContract, base: np.ndarray, t: np.ndarray, fast: bool = False) -> np.ndarray:
    """Smooth 0.5 Hz sinusoids peaking at 30 % of each axis's speed limit (base twists at 30 % of theirs);
    fast: 1.5 Hz ones whose peak acceleration is 119 % of each position axis's limit (beyond the limits:
    what the retimer slows along the path)."""
    amplitude = np.zeros(len(base))
    omega = 2 * np.pi * (FAST_HZ if fast else 0.5)
    for g in c.groups:
        sl = c.action_slice(g)
        vmax = np.array([lim.velocity_max for lim in g.limits])
        amax = np.array([lim.acceleration_max for lim in g.limits])
        size = FAST_SHARE * amax / omega**2 if fast else 0.3 * vmax / omega
        if g.kind is GroupKind.EE_POSE:
            amplitude[sl.start:sl.start + 3] = size[:3]
        elif g.kind is GroupKind.BASE_TWIST:
            amplitude[sl] = 0.3 * vmax
        else:
            amplitude[sl] = size
    return base + amplitude * np.sin(omega * t)[:, None]


def measured(ex: Executor, stamp: float, template: MeasuredState) -> MeasuredState:
    joints, poses = dict(template.joints), dict(template.poses)
    for cmd in ex._commands():
        if cmd.kind is GroupKind.EE_POSE and ex.contract.group(cmd.group).ik is None:
            poses[cmd.group] = (cmd.positions[:3], cmd.positions[3:])
        elif cmd.kind is not GroupKind.BASE_TWIST:
            joints.update(zip(cmd.names, cmd.positions.tolist(), strict=True))
    return MeasuredState(stamp, joints, poses)


def run(name: str, ticks: int, strategy: MergeStrategy, horizon_points: int, fast: bool = False,
        retime: bool = True) -> dict[str, float]:
    c = load_contract(config_path("robots", f"{name}.yaml"))
    ex = Executor(c, ExecutorConfig(plan=PlanConfig(strategy=strategy), retime=retime))
    template, state, base = rest(c)
    now = 0.0
    ex.tick(now, template)
    ex.start(now)
    tick_ns, merge_ns, preview_ns, iterations, distances = [], [], [], [], []
    steps = np.arange(32) * c.dt_s
    warmup = 300
    for k in range(ticks + warmup):
        now += ex.period_s
        if k % 20 == 0:
            t_obs = now - 0.05
            chunk = Chunk(k, t_obs, c.dt_s, c.action_names, motion(c, base, t_obs + steps, fast),
                          state_names=c.action_names, state=state)
            t0 = time.perf_counter_ns()
            outcome = ex.on_chunk(chunk, now)
            merge_ns.append(time.perf_counter_ns() - t0)
            assert outcome.accepted, outcome.reason
        m = measured(ex, now, template)
        calls = ex._guard.model.calls if ex._guard is not None else 0
        t0 = time.perf_counter_ns()
        out = ex.tick(now, m)
        elapsed = time.perf_counter_ns() - t0
        calls = (ex._guard.model.calls if ex._guard is not None else 0) - calls
        assert out is not None
        t0 = time.perf_counter_ns()
        ex.horizon(horizon_points)  # what JTC horizon mode adds to each tick
        preview_elapsed = time.perf_counter_ns() - t0
        if k >= warmup:
            tick_ns.append(elapsed)
            preview_ns.append(preview_elapsed)
            if ex._ik is not None:
                iterations.append(ex._ik.iterations)
                distances.append(calls)
    assert ex.state.name == "RUNNING", ex.state
    distance_us = []
    if ex._guard is not None:  # one self-collision distance (every pair, pinocchio + coal) on its own
        q = ex._guard.model.q.copy()
        for _ in range(300):
            t0 = time.perf_counter_ns()
            ex._guard.model.clearance(q)
            distance_us.append((time.perf_counter_ns() - t0) / 1e3)
    interventions = {k.value: v for k, v in ex.counters.items() if v}
    ticks_us, merges_us = np.array(tick_ns) / 1e3, np.array(merge_ns[warmup // 20:]) / 1e3
    previews_us = np.array(preview_ns) / 1e3
    return {"tick_p50_us": float(np.percentile(ticks_us, 50)), "tick_p99_us": float(np.percentile(ticks_us, 99)),
            "tick_max_us": float(ticks_us.max()), "merge_p50_us": float(np.percentile(merges_us, 50)),
            "merge_p99_us": float(np.percentile(merges_us, 99)), "ticks": len(ticks_us), "merges": len(merges_us),
            "preview_p50_us": float(np.percentile(previews_us, 50)),
            "preview_p99_us": float(np.percentile(previews_us, 99)),
            "interventions": interventions,
            "profiles": ex.timing.retimer.computed if ex.timing.retimer is not None else 0,
            **({"ik_iterations_mean": float(np.mean(iterations)), "ik_iterations_max": int(np.max(iterations)),
                "collision_checks_mean": float(np.mean(distances)), "collision_checks_max": int(np.max(distances)),
                "collision_distance_p50_us": float(np.percentile(distance_us, 50))}
               if iterations else {})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=5000)
    parser.add_argument("--strategy", choices=[s.value for s in MergeStrategy], default="crossfade")
    parser.add_argument("--horizon-points", type=int, default=10, help="JTC horizon mode: points per preview")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    import os

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}")
    results = {}
    for label, name in CONTRACTS.items():
        results[label] = r = run(name, args.ticks, MergeStrategy(args.strategy), args.horizon_points)
        print(f"{label:34s} tick p50 {r['tick_p50_us']:7.1f} µs  p99 {r['tick_p99_us']:7.1f} µs  "
              f"max {r['tick_max_us']:8.1f} µs | merge p50 {r['merge_p50_us']:7.1f} µs  "
              f"p99 {r['merge_p99_us']:7.1f} µs | horizon preview ({args.horizon_points} points) "
              f"p50 {r['preview_p50_us']:7.1f} µs  p99 {r['preview_p99_us']:7.1f} µs")
        if "ik_iterations_mean" in r:
            print(f"{'':34s} IK QP steps per tick (both arms): mean {r['ik_iterations_mean']:.2f}, "
                  f"max {r['ik_iterations_max']}; self-collision distances per tick: mean "
                  f"{r['collision_checks_mean']:.2f}, max {r['collision_checks_max']} "
                  f"(one: p50 {r['collision_distance_p50_us']:.0f} µs); "
                  f"interventions {r['interventions']}")
    a, b = results["14-D aloha_bimanual"], results["26-D mobile_manipulator"]
    print(f"ratio 26-D / 14-D: tick p50 {b['tick_p50_us'] / a['tick_p50_us']:.2f}, "
          f"merge p50 {b['merge_p50_us'] / a['merge_p50_us']:.2f}; "
          f"preview / tick p50 (14-D): {a['preview_p50_us'] / a['tick_p50_us']:.2f}")
    t = results["26-D tiago_dual (IK + collision)"]
    print(f"ratio tiago_dual (IK) / mobile_manipulator (Cartesian out): tick p50 "
          f"{t['tick_p50_us'] / b['tick_p50_us']:.2f}, p99 {t['tick_p99_us'] / b['tick_p99_us']:.2f}; "
          f"tiago_dual tick p99 / 1 ms goal: {t['tick_p99_us'] / 1000:.2f}")
    distances_us = t["collision_checks_mean"] * t["collision_distance_p50_us"]
    print(f"tiago_dual without IK (the 26-D mobile_manipulator tick + tiago's self-collision distances): "
          f"p50 {b['tick_p50_us'] + distances_us:.0f} µs, p99 {b['tick_p99_us'] + distances_us:.0f} µs = "
          f"{(b['tick_p99_us'] + distances_us) / 1000:.2f} × the 1 ms goal")
    print(f"infeasible stream ({FAST_HZ} Hz sinusoids at {FAST_SHARE:.0%} of a_max), retiming off / on:")
    for label, name in list(CONTRACTS.items())[:2]:
        off = run(name, args.ticks, MergeStrategy(args.strategy), args.horizon_points, fast=True, retime=False)
        on = run(name, args.ticks, MergeStrategy(args.strategy), args.horizon_points, fast=True, retime=True)
        results[f"{label} infeasible"] = {"retime_off": off, "retime_on": on}
        print(f"{label:34s} tick p50 {off['tick_p50_us']:7.1f} / {on['tick_p50_us']:7.1f} µs  "
              f"p99 {off['tick_p99_us']:7.1f} / {on['tick_p99_us']:7.1f} µs | merge p50 {off['merge_p50_us']:7.1f} / "
              f"{on['merge_p50_us']:7.1f} µs  p99 {off['merge_p99_us']:7.1f} / {on['merge_p99_us']:7.1f} µs | "
              f"profiles {on['profiles']} of {on['merges'] + ANALYSED_WARMUP_MERGES} merges; "
              f"ratio on / off: tick p50 {on['tick_p50_us'] / off['tick_p50_us']:.2f}, "
              f"merge p50 {on['merge_p50_us'] / off['merge_p50_us']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
