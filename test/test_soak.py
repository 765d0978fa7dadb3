"""The soak benchmark, 30 s of sim time: the closed loop keeps running, memory stays flat, deadlines are counted,
the measured motion stays within the limits."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from test.support.ros_process import REPO_ROOT

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_thirty_second_soak(domain_id, tmp_path):
    out = tmp_path / "soak.json"
    done = subprocess.run([sys.executable, "benchmarks/soak.py", "--duration-s", "30", "--domain-id", str(domain_id),
                           "--json", str(out)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["sim_time_s"] >= 29.9 and report["chunks"] > 10
    assert report["executor_state"] == "RUNNING" and report["interventions"]["nonfinite"] == 0, \
        (report["executor_message"], report["interventions"], report["warnings_and_errors"])
    assert isinstance(report["missed_deadlines"], int)
    # At the robot, not only at the executor, and coarsely: gym-aloha's arm joints are P-only position servos
    # that overshoot commands within the limits to 96–122 % of a velocity limit in this soak (and ring to 13×
    # the acceleration limit); 150 % catches a gross lurch. The starved-executor check that tells a lurch from
    # the plant compares against a steady run: test/ros/test_stock_jtc_loop.py.
    assert report["joint_states"] > 1000
    assert report["measured"]["max_joint_velocity_of_limit"] <= 1.5, report["measured"]
    for name in ("sim_node", "policy_node", "executor_node"):
        rss = report["rss"][name]
        assert rss.get("samples", 2) >= 2, f"{name} was not sampled (died?)"
        assert rss["growth_percent"] < 5.0, f"{name} grew {rss['growth_percent']:.1f} % in resident memory"
