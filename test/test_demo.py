"""`wall-oss-ros demo` end to end, shortened to 2 s of sim time: the whole graph closed loop on MuJoCo."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from test.support.robots import contract
from test.support.ros_process import REPO_ROOT
from wall_oss_ros.ros.dds import ros_environment
from wall_oss_ros.tools.run_report import read_run

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_short_closed_loop_demo_moves_the_sim_within_limits(domain_id, tmp_path):
    out = tmp_path / "demo"
    env = {**os.environ, **ros_environment(domain_id=domain_id)}
    done = subprocess.run([sys.executable, "-m", "wall_oss_ros.tools.cli", "demo", "--out", str(out),
                           "--duration-s", "2"], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)
    log = (out / "graph.log").read_text() if (out / "graph.log").exists() else ""
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}\n{log[-3000:]}"
    assert str(out / "report.md") in done.stdout

    summary = json.loads((out / "summary.json").read_text())
    assert summary["limit_violations_total"] == 0, summary["limit_violations"]
    assert summary["sim_time_s"] >= 1.9 and summary["commands"] > 50 and summary["chunks"] >= 1
    c = contract("aloha_bimanual")
    run = read_run(out / "run.mcap", c)
    q = np.array(run.joint_q)
    assert np.all(np.isfinite(q)) and all(np.all(np.isfinite(p)) and np.all(np.isfinite(v))
                                          for cmds in run.commands.values() for _, p, v in cmds)
    # Commands reached the sim: the measured joints moved once chunks were executed.
    assert np.ptp(q, axis=0).max() > 0.01, "the simulated robot never moved"
    report = (out / "report.md").read_text()
    for name in ("joints.png", "latency.png", "status.png"):
        assert f"]({name})" in report and (out / name).stat().st_size > 10_000
