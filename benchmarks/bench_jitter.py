"""How the executor answers chunk jitter and demanding motion: averaged feed-forward against the spline's own.

The ALOHA contract on a perfectly tracking robot, 100 Hz ticks, a chunk every 60 ms from observations
50 ms old. Scenarios: the rest pose plus Gaussian noise per chunk step (policy jitter), a waist sine the
limits allow (with and without noise), and one that needs more acceleration than the limits. For each,
the command's deviation from the noise-free target (std and max over the last 25 s of 30 s, rad) with
`feedforward_window_s` 0 (the spline's instantaneous derivatives) and the default, and their ratio.

    python benchmarks/bench_jitter.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform

import numpy as np

from wall_oss_ros.core.chunk import Chunk
from wall_oss_ros.core.contract import GroupKind, load_contract
from wall_oss_ros.core.executor import Executor
from wall_oss_ros.core.executor_types import ExecutorConfig, MeasuredState
from wall_oss_ros.core.plan import PlanConfig
from wall_oss_ros.core.resources import config_path
from wall_oss_ros.core.safety.status import ExecutorState

ALOHA_ARM = [0.0, -0.96, 1.16, 0.0, -0.3, 0.0]
SCENARIOS = {  # name: (noise std [rad], waist sine frequency [Hz], amplitude [rad])
    "noise 5 mrad": (0.005, 0.0, 0.0),
    "noise 20 mrad": (0.02, 0.0, 0.0),
    "noise 40 mrad": (0.04, 0.0, 0.0),
    "sine 0.5 Hz 0.3 rad": (0.0, 0.5, 0.3),
    "sine 1 Hz 0.3 rad (79 % of a_max)": (0.0, 1.0, 0.3),
    "sine 1 Hz 0.3 rad + noise 10 mrad": (0.01, 1.0, 0.3),
    "sine 1.5 Hz 0.2 rad (119 % of a_max)": (0.0, 1.5, 0.2),
}


def run(window_s: float, noise: float, freq: float, amp: float, seconds: float = 30.0, seed: int = 1
        ) -> tuple[float, float]:
    contract = load_contract(config_path("robots", "aloha_bimanual.yaml"))
    ex = Executor(contract, ExecutorConfig(plan=PlanConfig(feedforward_window_s=window_s)))
    joints, rest = {}, []
    for g in contract.groups:
        start = ALOHA_ARM if g.kind is GroupKind.JOINT_POSITION else [0.5]
        joints.update(zip(g.axes, start, strict=True))
        rest += start
    rest, axes = np.array(rest), [a for g in contract.groups for a in g.axes]
    rng = np.random.default_rng(seed)
    ex.tick(0.0, MeasuredState(0.0, joints))
    ex.start(0.0)
    deviation = []
    for k in range(1, int(seconds * 100)):
        now = k * 0.01
        if k % 6 == 0:
            t = now - 0.05 + contract.dt_s * np.arange(32)
            values = rest + rng.normal(0.0, noise, (32, len(rest)))
            values[:, 0] += amp * np.sin(2 * np.pi * freq * t)
            values[:, [6, 13]] = np.clip(values[:, [6, 13]], 0.0, 1.0)
            ex.on_chunk(Chunk(k, now - 0.05, contract.dt_s, contract.action_names, values), now)
        ex.tick(now, MeasuredState(now, dict(zip(axes, ex.command_positions.tolist(), strict=True))))  # tracks
        if now >= 5.0:
            deviation.append(ex.command_positions[0] - rest[0] - amp * np.sin(2 * np.pi * freq * now))
    d = np.array(deviation)
    assert ex.state is ExecutorState.RUNNING, f"executor {ex.state.name}: {ex.last_fault}"
    return float(d.std()), float(np.abs(d).max())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    window = PlanConfig().feedforward_window_s
    print(f"machine: {platform.machine()}; left waist deviation from the noise-free target [mrad], std / max")
    print(f"{'scenario':40s} {'window 0':>16s} {f'window {window} s':>16s} {'std ratio':>10s}")
    rows = {}
    for name, (noise, freq, amp) in SCENARIOS.items():
        raw, averaged = run(0.0, noise, freq, amp), run(window, noise, freq, amp)
        rows[name] = {"window_0": raw, f"window_{window}": averaged, "std_ratio": raw[0] / max(averaged[0], 1e-9)}
        print(f"{name:40s} {raw[0] * 1e3:7.1f} / {raw[1] * 1e3:6.1f} {averaged[0] * 1e3:7.1f} / "
              f"{averaged[1] * 1e3:6.1f} {rows[name]['std_ratio']:10.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
