"""`wall-oss-ros doctor` reports what this machine can run, and fails when something required is missing."""

from __future__ import annotations

import json
import subprocess

from wall_oss_ros.ros.dds import PROFILE_ENV, ros_environment


def run_doctor(env: dict[str, str]) -> tuple[int, dict[str, dict]]:
    out = subprocess.run(["wall-oss-ros", "doctor", "--json"], env=env, capture_output=True, text=True, timeout=120)
    return out.returncode, {c["name"]: c for c in json.loads(out.stdout)}


def test_doctor_passes_in_the_project_environment():
    code, checks = run_doctor(ros_environment())
    assert code == 0, checks
    assert checks["messages"]["ok"] and checks["rclpy"]["ok"]
    assert "loopback-only" in checks["dds profile"]["detail"]


def test_doctor_fails_on_a_missing_profile(tmp_path):
    env = ros_environment()
    env[PROFILE_ENV] = str(tmp_path / "absent.xml")
    code, checks = run_doctor(env)
    assert code == 1
    assert not checks["dds profile"]["ok"]
    assert "absent.xml" in checks["dds profile"]["detail"]
