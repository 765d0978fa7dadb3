"""Cost of the arm IK per control tick (core/inverse_kinematics.py), measured in one run.

TIAGo++ (example-robot-data's URDF), both 7-DoF arms, each following a smooth end-effector path at a
control rate: every tick one warm-started solve per arm (at most `max_iterations` QP steps) and the
singularity check. Prints p50 / p99 per arm solve, per tick (both arms + both singularity checks), the
iterations a solve took, and the share of ticks that reached the target within the tolerances.

    python benchmarks/bench_ik.py [--ticks 2000] [--hz 100] [--iterations 4]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from wall_oss_ros.core.inverse_kinematics import ArmIk, IkConfig, IkStatus
from wall_oss_ros.core.resources import package_share

START = np.array([0.2, -0.5, 1.5, 1.8, -1.0, 0.8, 0.0])  # a bent, well-conditioned arm pose [rad]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=2000)
    parser.add_argument("--hz", type=float, default=100.0)
    parser.add_argument("--iterations", type=int, default=IkConfig().max_iterations)
    args = parser.parse_args()
    urdf = str(package_share("example-robot-data") / "robots" / "tiago_description" / "robots" / "tiago_dual.urdf")
    config = IkConfig(max_iterations=args.iterations)
    arms = {side: ArmIk(urdf, tuple(f"arm_{side}_{i}_joint" for i in range(1, 8)), "base_footprint",
                        f"arm_{side}_tool_link", {"torso_lift_joint": 0.2}, config) for side in ("left", "right")}
    q = {side: np.clip(START, ik.lower, ik.upper) for side, ik in arms.items()}
    home = {side: ik.forward(q[side]) for side, ik in arms.items()}
    solve_ms, tick_ms, iterations, reached = [], [], [], 0
    dt = 1.0 / args.hz
    for k in range(args.ticks):
        t = k * dt
        tick_start = time.perf_counter()
        for side, ik in arms.items():
            position, rotation = home[side]
            w = 2 * np.pi * t
            target = position + 0.08 * np.array([np.sin(0.4 * w), np.sin(0.3 * w), np.cos(0.5 * w) - 1])
            start = time.perf_counter()
            result = ik.solve(q[side], target, rotation)
            solve_ms.append((time.perf_counter() - start) * 1e3)
            ik.singularity(result.q, np.concatenate([(target - ik.forward(q[side])[0]) / dt, np.zeros(3)]))
            iterations.append(result.iterations)
            reached += result.status is IkStatus.REACHED
            q[side] = result.q
        tick_ms.append((time.perf_counter() - tick_start) * 1e3)
    solves = np.array(solve_ms)
    ticks = np.array(tick_ms[10:])
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; {args.ticks} ticks at {args.hz:.0f} Hz, "
          f"max {args.iterations} QP steps per solve")
    print(f"one arm solve      p50 {np.percentile(solves, 50):7.3f} ms  p99 {np.percentile(solves, 99):7.3f} ms")
    print(f"tick (2 arms + singularity checks) p50 {np.percentile(ticks, 50):7.3f} ms  "
          f"p99 {np.percentile(ticks, 99):7.3f} ms  ({np.percentile(ticks, 99) / (1e3 * dt):.0%} of the period)")
    print(f"iterations per solve: mean {np.mean(iterations):.2f}, max {max(iterations)}; reached "
          f"{reached / len(iterations):.1%} of solves")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
