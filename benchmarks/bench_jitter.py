"""How the executor answers chunk jitter and demanding motion: averaged feed-forward against the spline's own,
and retiming (the plan's clock slowed along its path) against chasing a target beyond the limits.

The ALOHA contract on a perfectly tracking robot, 100 Hz ticks, a chunk every 60 ms from observations
50 ms old. Scenarios: the rest pose plus Gaussian noise per chunk step (policy jitter), a waist sine the
limits allow (with and without noise), and one that needs more acceleration than the limits. The policy
continues the sine from the phase the robot had reached along it when observed (the plan time of the
observation: real time itself without retiming, so those rows are the time-indexed sine). For each, the
command's deviation from the noise-free sine at the plan's phase (std and max over the last 25 s of 30 s,
rad) with `feedforward_window_s` 0 (the spline's instantaneous derivatives) and the default, without
retiming and with it (`retime` true); swings: crossings of the error from beyond -0.05 rad to
beyond +0.05 rad or back, per second (a follower swinging around its target); and the ratios.

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
from wall_oss_ros.tools.motion_checks import swings

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


SWING_RAD = 0.05  # a follower's swing crosses this on both sides of its target (a quarter of the sine)


def run(window_s: float, noise: float, freq: float, amp: float, retime: bool, seconds: float = 30.0,
        seed: int = 1) -> dict[str, float]:
    contract = load_contract(config_path("robots", "aloha_bimanual.yaml"))
    ex = Executor(contract, ExecutorConfig(plan=PlanConfig(feedforward_window_s=window_s), retime=retime))
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
            phase = ex.timing.clock.plan_time(now - 0.05) + contract.dt_s * np.arange(32)
            values = rest + rng.normal(0.0, noise, (32, len(rest)))
            values[:, 0] += amp * np.sin(2 * np.pi * freq * phase)
            values[:, [6, 13]] = np.clip(values[:, [6, 13]], 0.0, 1.0)
            ex.on_chunk(Chunk(k, now - 0.05, contract.dt_s, contract.action_names, values), now)
        ex.tick(now, MeasuredState(now, dict(zip(axes, ex.command_positions.tolist(), strict=True))))  # tracks
        if now >= 5.0:
            deviation.append(ex.command_positions[0] - rest[0] - amp * np.sin(2 * np.pi * freq * ex.timing.tau))
    d = np.array(deviation)
    assert ex.state is ExecutorState.RUNNING, f"executor {ex.state.name}: {ex.last_fault}"
    seconds_measured = len(d) * ex.period_s
    return {"std": float(d.std()), "max": float(np.abs(d).max()),
            "swings_per_s": swings(d, SWING_RAD) / seconds_measured, "plan_rate": ex.timing.clock.rate,
            "lag_s": ex.status(now).plan_lag_s}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    window = PlanConfig().feedforward_window_s
    print(f"machine: {platform.machine()}; left waist deviation from the noise-free sine at the plan's phase "
          f"[mrad], std / max, swings across ±{SWING_RAD * 1e3:.0f} mrad per second")
    print(f"{'scenario':40s} {'window 0':>22s} {f'window {window} s':>22s} {'+ retiming':>22s} "
          f"{'window ratio':>12s} {'retime ratio':>12s}  plan rate / lag")
    rows = {}
    for name, (noise, freq, amp) in SCENARIOS.items():
        raw, averaged, retimed = (run(0.0, noise, freq, amp, False), run(window, noise, freq, amp, False),
                                  run(window, noise, freq, amp, True))
        rows[name] = {"window_0": raw, f"window_{window}": averaged, f"window_{window}_retimed": retimed,
                      "window_std_ratio": raw["std"] / max(averaged["std"], 1e-9),
                      "retime_std_ratio": averaged["std"] / max(retimed["std"], 1e-9)}
        cells = [f"{r['std'] * 1e3:6.1f} / {r['max'] * 1e3:5.1f} / {r['swings_per_s']:4.2f}"
                 for r in (raw, averaged, retimed)]
        print(f"{name:40s} {cells[0]:>22s} {cells[1]:>22s} {cells[2]:>22s} {rows[name]['window_std_ratio']:12.1f} "
              f"{rows[name]['retime_std_ratio']:12.1f}  {retimed['plan_rate']:.2f} / {retimed['lag_s'] * 1e3:.0f} ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
